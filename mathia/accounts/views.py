"""HTTP adapters for accounts: avatars (served by Django, so they work wherever Mathia runs)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpRequest, HttpResponseBase

from mathia.accounts.models import User
from mathia.core.errors import NotFound
from mathia.core.http import request_user
from mathia.workspaces.models import Membership


@login_required
def avatar(request: HttpRequest, user_id: int) -> HttpResponseBase:
    """Someone's avatar, for people who share a workspace with them (the same 404 otherwise)."""
    me = request_user(request)
    if user_id != me.pk and not Membership.objects.filter(user_id=user_id, workspace__memberships__user=me).exists():
        raise NotFound("No avatar here.")
    person = User.objects.filter(pk=user_id).only("avatar").first()
    if person is None or not person.avatar:
        raise NotFound("No avatar here.")
    response = FileResponse(person.avatar.open("rb"), content_type="image/png")
    response["Cache-Control"] = "private, max-age=300"
    response["X-Content-Type-Options"] = "nosniff"
    return response

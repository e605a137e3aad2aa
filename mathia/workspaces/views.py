"""HTTP adapters for workspaces: thin wrappers over access, actions and selectors."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from mathia.core.errors import InvalidInput
from mathia.core.http import request_user
from mathia.rooms.invite_session import pending_invite_token
from mathia.workspaces import actions, selectors
from mathia.workspaces.access import access_workspace_for_user
from mathia.workspaces.models import Role


@login_required
def home(request: HttpRequest) -> HttpResponse:
    token = pending_invite_token(request)
    if token is not None:  # signed up or in through an invite link: back to it
        return redirect("invite", token=token)
    default = selectors.default_membership(user=request_user(request))
    if default is not None:
        return redirect("chat", slug=default.workspace.slug)
    return redirect("workspace_create")


@login_required
@require_http_methods(["GET", "POST"])
def workspace_create(request: HttpRequest) -> HttpResponse:
    error = None
    if request.method == "POST":
        try:
            workspace = actions.workspace_create(owner=request_user(request), name=request.POST.get("name", ""))
        except InvalidInput as exc:
            error = exc.message
        else:
            return redirect("chat", slug=workspace.slug)
    return render(request, "workspaces/create.html", {"error": error}, status=400 if error else 200)


@login_required
def workspace_detail(request: HttpRequest, slug: str) -> HttpResponse:
    membership = access_workspace_for_user(user=request_user(request), slug=slug)
    return render(
        request,
        "workspaces/detail.html",
        {
            "membership": membership,
            "workspace": membership.workspace,
            "members": selectors.workspace_members(membership=membership),
            "memberships": selectors.memberships_for_user(user=request_user(request)),
            "roles": Role.choices,
        },
    )


@login_required
@require_POST
def member_set_role(request: HttpRequest, slug: str, user_id: int) -> HttpResponse:
    actor = access_workspace_for_user(user=request_user(request), slug=slug)
    target = selectors.member_of_workspace(workspace_id=actor.workspace_id, user_id=user_id)
    actions.membership_set_role(actor=actor, target=target, role=request.POST.get("role", ""))
    messages.success(request, f"{target.user.name} is now {target.get_role_display().lower()}.")
    return redirect("workspace_detail", slug=slug)

"""Settings → Profile (the other sections live with their subjects: goals, wallet)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_http_methods

from mathia.core.http import request_user
from mathia.onboarding.forms import ProfileForm
from mathia.usersettings.sections import render_section


@login_required
def settings_home(request: HttpRequest) -> HttpResponse:
    return redirect("settings_profile")


@login_required
@require_http_methods(["GET", "POST"])
def settings_profile(request: HttpRequest) -> HttpResponse:
    from django.conf import settings

    user = request_user(request)
    initial = {"display_name": user.display_name, "title": user.title, "timezone": user.timezone}
    form = ProfileForm(initial=initial)
    if request.method == "POST":
        form = ProfileForm(request.POST, request.FILES, initial=initial)
        if form.save_for(user):
            messages.success(request, "Profile saved.")
            return redirect("settings_profile")
    context = {
        "form": form,
        "user_avatar": bool(user.avatar),
        "avatar_max_bytes": settings.AVATAR_MAX_BYTES,
    }
    return render_section(request, "profile", "settings/profile.html", context, status=400 if form.errors else 200)

"""HTTP adapters for the onboarding wizard: one step per screen, saved on every step."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from mathia.accounts.actions import user_onboarding_move
from mathia.accounts.models import User
from mathia.core.errors import AppError, InvalidInput
from mathia.core.http import request_user
from mathia.goals.selectors import goal_profile_for_user
from mathia.onboarding.actions import (
    invite_token_from,
    onboarding_finish,
    onboarding_first_room,
    onboarding_invite_emails,
    onboarding_invite_link,
    onboarding_join,
    onboarding_workspace,
    onboarding_workspace_setup,
)
from mathia.onboarding.forms import GoalsForm, JoinForm, ProfileForm, TeammatesForm, WorkspaceForm
from mathia.onboarding.steps import GOALS, PROFILE, TEAMMATES, WORKSPACE, Step, reached_index, step_index, steps_for
from mathia.rooms import actions as room_actions
from mathia.rooms.invite_session import pending_invite_forget, pending_invite_token
from mathia.rooms.models import Invite, Room
from mathia.workspaces.models import Role


def _invite(request: HttpRequest) -> dict[str, Any] | None:
    """The invitation this person arrived through, if it can still be used."""
    token = pending_invite_token(request)
    if token is None:
        return None
    try:
        return {"token": token, **room_actions.invite_details(token=token)}
    except AppError as error:
        pending_invite_forget(request)
        messages.warning(request, f"Your invitation could not be used ({error.message}) Set up a workspace instead.")
        return None


def _room_url(room: Room) -> str:
    return f"{reverse('chat', args=[room.workspace.slug])}#room-{room.pk}"


@login_required
def onboarding(request: HttpRequest) -> HttpResponse:
    """Where the person left off (or the app, once done)."""
    user = request_user(request)
    if user.is_onboarded:
        return redirect("home")
    steps = steps_for(invited=_invite(request) is not None)
    return redirect("onboarding_step", step=steps[reached_index(steps, user.onboarding_step)].key)


@login_required
@require_http_methods(["GET", "POST"])
def onboarding_step(request: HttpRequest, step: str) -> HttpResponse:
    user = request_user(request)
    if user.is_onboarded:
        return redirect("home")
    invite = _invite(request)
    steps = steps_for(invited=invite is not None)
    index = step_index(steps, step)
    reached = reached_index(steps, user.onboarding_step)
    if index is None or index > reached:  # not a step of this path, or not reached yet
        return redirect("onboarding_step", step=steps[reached].key)
    handler = _HANDLERS[step]
    result = handler(request, user, invite)
    if isinstance(result, HttpResponse):
        return result
    context: dict[str, Any] = {
        **result,
        "step": steps[index],
        "steps": steps,
        "index": index,
        "number": index + 1,
        "total": len(steps),
        "previous": steps[index - 1] if index > 0 else None,
        "invite": invite,
    }
    context["avatar_max_bytes"] = settings.AVATAR_MAX_BYTES
    status = 400 if request.method == "POST" and any(f.errors for f in _forms(result)) else 200
    return render(request, f"onboarding/{step}.html", context, status=status)


def _forms(context: dict[str, Any]) -> list[Any]:
    return [value for value in context.values() if hasattr(value, "errors") and hasattr(value, "fields")]


def _advance(request: HttpRequest, user: User, current: Step, invite: dict[str, Any] | None) -> HttpResponse:
    """Save progress past ``current``: the next step, or the end of the wizard."""
    steps = steps_for(invited=invite is not None)
    index = step_index(steps, current.key)
    assert index is not None
    if index + 1 < len(steps):
        nxt = steps[index + 1]
        if reached_index(steps, user.onboarding_step) < index + 1:
            user_onboarding_move(user=user, step=nxt.key)
        return redirect("onboarding_step", step=nxt.key)
    if invite is not None:
        try:
            return _join(request, user, invite["token"])
        except AppError as error:  # expired or used up since: set up a workspace instead
            pending_invite_forget(request)
            messages.warning(request, f"Your invitation could not be used: {error.message}")
            return redirect("onboarding")
    return _finish(request, user)


def _join(request: HttpRequest, user: User, token: str) -> HttpResponse:
    room = onboarding_join(user=user, token=token)
    pending_invite_forget(request)
    return redirect(_room_url(room))


def _finish(request: HttpRequest, user: User) -> HttpResponse:
    workspace, room = onboarding_finish(user=user)
    messages.success(request, "You're all set. Mention @mathia in any room to ask it something.")
    return redirect(_room_url(room) if room else reverse("chat", args=[workspace.slug]))


# --- the steps ----------------------------------------------------------------------------


def _profile(request: HttpRequest, user: User, invite: dict[str, Any] | None) -> HttpResponse | dict[str, Any]:
    initial = {"display_name": user.display_name, "title": user.title, "timezone": user.timezone}
    posted = request.method == "POST"
    form = ProfileForm(request.POST if posted else None, request.FILES if posted else None, initial=initial)
    if user.timezone == "UTC":  # sign-up could not read the browser's (no script): the page offers it
        form.fields["timezone"].widget.attrs["data-suggest-browser"] = "1"
    if not posted:
        return {"form": form, "user_avatar": bool(user.avatar)}
    if form.save_for(user):
        return _advance(request, user, PROFILE, invite)
    return {"form": form, "user_avatar": bool(user.avatar)}


def _goals(request: HttpRequest, user: User, invite: dict[str, Any] | None) -> HttpResponse | dict[str, Any]:
    if request.method != "POST":
        return {"form": GoalsForm(initial=GoalsForm.initial_from(goal_profile_for_user(user=user)))}
    if "skip" in request.POST:
        return _advance(request, user, GOALS, invite)
    form = GoalsForm(request.POST)
    if form.save_for(user):
        return _advance(request, user, GOALS, invite)
    return {"form": form}


def _workspace(request: HttpRequest, user: User, invite: dict[str, Any] | None) -> HttpResponse | dict[str, Any]:
    workspace = onboarding_workspace(user=user).workspace
    set_up = onboarding_first_room(workspace_id=workspace.pk) is not None
    initial = {"name": workspace.name, "slug": workspace.slug} if set_up else {}
    form, join = WorkspaceForm(initial=initial), JoinForm()
    if request.method == "POST" and request.POST.get("action") == "join":
        join = JoinForm(request.POST)
        if join.is_valid():
            try:
                return _join(request, user, invite_token_from(join.cleaned_data["invite_link"]))
            except AppError as error:
                join.add_error("invite_link", error.message)
    elif request.method == "POST":
        form = WorkspaceForm(request.POST, initial=initial)
        if form.is_valid():
            try:
                onboarding_workspace_setup(user=user, name=form.cleaned_data["name"], slug=form.cleaned_data["slug"])
            except InvalidInput as error:
                form.add_app_error(error)
            else:
                return _advance(request, user, WORKSPACE, invite)
    return {"form": form, "join": join}


def _teammates(request: HttpRequest, user: User, invite: dict[str, Any] | None) -> HttpResponse | dict[str, Any]:
    membership = onboarding_workspace(user=user)
    room = onboarding_first_room(workspace_id=membership.workspace_id)
    if room is None or membership.role != Role.OWNER:
        return _advance(request, user, TEAMMATES, invite)
    context: dict[str, Any] = {"form": TeammatesForm(), "room": room, "link": None, "sent": []}
    action = request.POST.get("action") if request.method == "POST" else None
    if action in ("skip", "finish"):
        return _advance(request, user, TEAMMATES, invite)
    if action == "link":
        created = onboarding_invite_link(user=user, room=room)
        context["link"] = _invite_url(request, created)
    elif action == "email":
        form = context["form"] = TeammatesForm(request.POST)
        if form.is_valid():
            try:
                context["sent"] = onboarding_invite_emails(
                    user=user,
                    room=room,
                    raw=form.cleaned_data["emails"],
                    accept_url=lambda created: _invite_url(request, created),
                )
            except InvalidInput as error:
                form.add_app_error(error)
            else:
                context["form"] = TeammatesForm()
    return context


def _invite_url(request: HttpRequest, invite: Invite) -> str:
    return request.build_absolute_uri(reverse("invite", args=[invite.token]))


_HANDLERS = {"profile": _profile, "goals": _goals, "workspace": _workspace, "teammates": _teammates}

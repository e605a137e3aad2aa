"""HTTP adapters for rooms and invites: the chat page, a JSON API, and the invite page."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from mathia.core.errors import AppError
from mathia.core.http import api_login_required, ok, parse_body, request_user
from mathia.rooms import actions, schemas, selectors
from mathia.rooms.access import access_room_for_user
from mathia.rooms.invite_session import pending_invite_forget, pending_invite_remember
from mathia.rooms.models import Invite
from mathia.tools.selectors import slash_command_list
from mathia.workspaces.access import access_workspace_for_user
from mathia.workspaces.selectors import memberships_for_user, workspace_people


@login_required
def chat(request: HttpRequest, slug: str) -> HttpResponse:
    membership = access_workspace_for_user(user=request_user(request), slug=slug)
    bootstrap = {
        "user": {"id": request_user(request).pk, "name": request_user(request).name},
        "workspace": {"id": membership.workspace_id, "slug": slug, "name": membership.workspace.name},
        "rooms": selectors.sidebar_rooms(user=request_user(request), workspace_id=membership.workspace_id),
        "people": workspace_people(membership=membership),
        "commands": slash_command_list(),
    }
    return render(
        request,
        "rooms/chat.html",
        {
            "bootstrap": bootstrap,
            "workspace": membership.workspace,
            "membership": membership,
            "memberships": memberships_for_user(user=request_user(request)),
        },
    )


# --- JSON API ---------------------------------------------------------------------------


@api_login_required
@require_http_methods(["GET", "POST"])
def api_rooms(request: HttpRequest, slug: str) -> HttpResponse:
    if request.method == "POST":
        body = parse_body(request, schemas.RoomCreate)
        room = actions.room_create(
            user=request_user(request), workspace_slug=slug, name=body.name, kind=body.kind, topic=body.topic
        )
        return ok({"room": selectors.room_summary(room)}, status=201)
    membership = access_workspace_for_user(user=request_user(request), slug=slug)
    return ok({"rooms": selectors.sidebar_rooms(user=request_user(request), workspace_id=membership.workspace_id)})


@api_login_required
@require_GET
def api_browse(request: HttpRequest, slug: str) -> HttpResponse:
    membership = access_workspace_for_user(user=request_user(request), slug=slug)
    return ok(
        {"rooms": selectors.browsable_public_rooms(user=request_user(request), workspace_id=membership.workspace_id)}
    )


@api_login_required
@require_GET
def api_people(request: HttpRequest, slug: str) -> HttpResponse:
    membership = access_workspace_for_user(user=request_user(request), slug=slug)
    return ok({"people": workspace_people(membership=membership)})


@api_login_required
@require_POST
def api_direct(request: HttpRequest, slug: str) -> HttpResponse:
    body = parse_body(request, schemas.DirectOpen)
    room = actions.direct_room_open(user=request_user(request), workspace_slug=slug, user_ids=body.user_ids)
    return ok({"room": selectors.room_summary(room)})


@api_login_required
@require_http_methods(["GET", "PATCH"])
def api_room(request: HttpRequest, room_id: int) -> HttpResponse:
    if request.method == "PATCH":
        body = parse_body(request, schemas.RoomUpdate)
        if body.name is not None or body.topic is not None:
            actions.room_update(user=request_user(request), room_id=room_id, name=body.name, topic=body.topic)
        if body.archived is not None:
            actions.room_set_archived(user=request_user(request), room_id=room_id, archived=body.archived)
    access = access_room_for_user(user=request_user(request), room_id=room_id)
    return ok(
        {
            "room": selectors.room_summary(access.room),
            "members": selectors.room_members(room_id=room_id),
            "you": {"member": access.is_member, "can_write": access.can_write, "can_moderate": access.can_moderate},
        }
    )


@api_login_required
@require_POST
def api_join(request: HttpRequest, room_id: int) -> HttpResponse:
    access = actions.room_join(user=request_user(request), room_id=room_id)
    return ok({"room": selectors.room_summary(access.room)})


@api_login_required
@require_POST
def api_leave(request: HttpRequest, room_id: int) -> HttpResponse:
    actions.room_leave(user=request_user(request), room_id=room_id)
    return ok({"left": room_id})


@api_login_required
@require_POST
def api_member_role(request: HttpRequest, room_id: int, user_id: int) -> HttpResponse:
    body = parse_body(request, schemas.MemberRole)
    actions.room_set_member_role(user=request_user(request), room_id=room_id, member_id=user_id, role=body.role)
    return ok({"members": selectors.room_members(room_id=room_id)})


def _invite_payload(request: HttpRequest, invite: Invite) -> dict[str, Any]:
    return {
        "id": invite.pk,
        "url": request.build_absolute_uri(reverse("invite", args=[invite.token])),
        "email": invite.email,
        "expires_at": invite.expires_at.isoformat(),
        "max_uses": invite.max_uses,
        "uses": invite.uses,
        "revoked": invite.revoked_at is not None,
    }


@api_login_required
@require_http_methods(["GET", "POST"])
def api_invites(request: HttpRequest, room_id: int) -> HttpResponse:
    if request.method == "POST":
        body = parse_body(request, schemas.InviteCreate)
        invite = actions.invite_create(
            user=request_user(request),
            room_id=room_id,
            expires_in_days=body.expires_in_days,
            max_uses=body.max_uses,
            email=body.email or "",
        )
        payload = _invite_payload(request, invite)
        email_error = None
        if invite.email:
            try:
                actions.invite_email_send(invite=invite, inviter=request_user(request), accept_url=payload["url"])
            except actions.InviteEmailNotSent as error:
                email_error = error.message
        return ok({"invite": payload, "email_error": email_error}, status=201)
    access = access_room_for_user(user=request_user(request), room_id=room_id, need="write")
    return ok({"invites": [_invite_payload(request, invite) for invite in selectors.room_invites(access=access)]})


@api_login_required
@require_POST
def api_invite_revoke(request: HttpRequest, invite_id: int) -> HttpResponse:
    invite = actions.invite_revoke(user=request_user(request), invite_id=invite_id)
    return ok({"invite": _invite_payload(request, invite)})


# --- The invite page ------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def invite(request: HttpRequest, token: str) -> HttpResponse:
    """Anyone with the link sees what it is for; signing up or in, then accepting, joins."""
    if request.user.is_authenticated:
        room = actions.invite_room_if_member(user=request_user(request), token=token)
        if room is not None:
            pending_invite_forget(request)
            return redirect(f"{reverse('chat', args=[room.workspace.slug])}#room-{room.pk}")
    try:
        details = actions.invite_details(token=token)
    except AppError as error:
        pending_invite_forget(request)
        return render(request, "error.html", {"error": error}, status=error.http_status)
    if not request.user.is_authenticated:
        pending_invite_remember(request, token)
        return render(request, "rooms/invite.html", {"invite": details, "token": token})
    if request.method == "POST":
        room = actions.invite_accept(user=request_user(request), token=token)
        pending_invite_forget(request)
        return redirect(f"{reverse('chat', args=[room.workspace.slug])}#room-{room.pk}")
    return render(request, "rooms/invite.html", {"invite": details, "token": token})

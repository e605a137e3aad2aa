"""HTTP adapters for reminders: list, set, cancel, snooze, edit, mark seen, preferences."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_http_methods, require_POST

from mathia.core.errors import InvalidInput
from mathia.core.http import api_login_required, ok, parse_body, request_user
from mathia.reminders import actions, schemas, selectors
from mathia.workspaces.access import access_workspace_for_user


@api_login_required
@require_http_methods(["GET", "POST"])
def api_reminders(request: HttpRequest) -> HttpResponse:
    user = request_user(request)
    if request.method == "GET":
        return ok(
            {
                "upcoming": selectors.upcoming_reminders(user=user),
                "unseen": selectors.unseen_deliveries(user=user),
                "preferences": selectors.reminder_preferences(user=user),
                "timezone": user.timezone,
            }
        )
    body = parse_body(request, schemas.ReminderCreate)
    membership = access_workspace_for_user(user=user, slug=body.workspace)
    workspace_id, room_id = membership.workspace_id, body.room_id
    if body.request is not None:
        created = actions.reminder_request(user=user, workspace_id=workspace_id, room_id=room_id, request=body.request)
    elif body.text is not None and body.when is not None:
        created = actions.reminder_from_parts(
            user=user, workspace_id=workspace_id, room_id=room_id, text=body.text, when=body.when
        )
    elif body.text is not None and body.due_at is not None:
        created = actions.reminder_create(
            user=user, workspace_id=workspace_id, room_id=room_id, text=body.text, due=body.due_at
        )
    else:
        raise InvalidInput("Give a request, or a text with a time (when or due_at).", code="invalid")
    return ok(
        {"reminder": selectors.reminder_payload(created.reminder), "confirmation": created.confirmation}, status=201
    )


@api_login_required
@require_http_methods(["PATCH"])
def api_reminder(request: HttpRequest, reminder_id: int) -> HttpResponse:
    body = parse_body(request, schemas.ReminderEdit)
    reminder = actions.reminder_edit(
        user=request_user(request), reminder_id=reminder_id, text=body.text, when=body.when
    )
    return ok({"reminder": selectors.reminder_payload(reminder)})


@api_login_required
@require_POST
def api_cancel(request: HttpRequest, reminder_id: int) -> HttpResponse:
    reminder = actions.reminder_cancel(user=request_user(request), reminder_id=reminder_id)
    return ok({"reminder": selectors.reminder_payload(reminder)})


@api_login_required
@require_POST
def api_snooze(request: HttpRequest, reminder_id: int) -> HttpResponse:
    body = parse_body(request, schemas.ReminderSnooze)
    reminder = actions.reminder_snooze(user=request_user(request), reminder_id=reminder_id, choice=body.for_)
    return ok({"reminder": selectors.reminder_payload(reminder)})


@api_login_required
@require_POST
def api_seen(request: HttpRequest) -> HttpResponse:
    body = parse_body(request, schemas.DeliveriesSeen)
    count = actions.deliveries_mark_seen(user=request_user(request), delivery_ids=body.ids)
    return ok({"seen": count})


@api_login_required
@require_http_methods(["GET", "PUT"])
def api_preferences(request: HttpRequest) -> HttpResponse:
    user = request_user(request)
    if request.method == "PUT":
        body = parse_body(request, schemas.PreferencesBody)
        return ok({"preferences": actions.preferences_set(user=user, email=body.email)})
    return ok({"preferences": selectors.reminder_preferences(user=user)})

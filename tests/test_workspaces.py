"""Workspaces and roles, through the pages people use and the actions behind them."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from mathia.core.errors import InvalidInput, PermissionDenied
from mathia.workspaces import actions
from mathia.workspaces.models import Membership, Role, Workspace
from tests.helpers import assert_error, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def team() -> dict[str, Membership]:
    owner = make_user(display_name="Olive Owner")
    workspace = actions.workspace_create(owner=owner, name="Acme")
    members = {"owner": Membership.objects.get(workspace=workspace, user=owner)}
    members["admin"] = actions.membership_add(
        workspace=workspace, user=make_user(display_name="Ada Admin"), role=Role.ADMIN
    )
    members["admin2"] = actions.membership_add(workspace=workspace, user=make_user(), role=Role.ADMIN)
    members["member"] = actions.membership_add(workspace=workspace, user=make_user(display_name="Mo Member"))
    members["member2"] = actions.membership_add(workspace=workspace, user=make_user())
    return members


def _set_role(client: Client, actor: Membership, target: Membership, role: str):  # type: ignore[no-untyped-def]
    client.force_login(actor.user)
    return client.post(
        f"/w/{actor.workspace.slug}/members/{target.user_id}/role/", {"role": role}, HTTP_ACCEPT="application/json"
    )


def test_every_user_has_exactly_one_default_workspace_they_own() -> None:
    user = make_user(display_name="Grace")
    memberships = Membership.objects.filter(user=user)
    assert [(m.role, m.is_default) for m in memberships] == [(Role.OWNER, True)]
    assert memberships[0].workspace.name == "Grace's workspace"


def test_admin_promotes_a_member(client: Client, team: dict[str, Membership]) -> None:
    response = _set_role(client, team["admin"], team["member"], "admin")
    assert response.status_code == 302
    team["member"].refresh_from_db()
    assert team["member"].role == Role.ADMIN


def test_member_cannot_change_roles(client: Client, team: dict[str, Membership]) -> None:
    response = _set_role(client, team["member"], team["member2"], "admin")
    assert_error(response, status=403, code="forbidden")
    team["member2"].refresh_from_db()
    assert team["member2"].role == Role.MEMBER


def test_admin_cannot_demote_another_admin_but_owner_can(client: Client, team: dict[str, Membership]) -> None:
    assert_error(_set_role(client, team["admin"], team["admin2"], "member"), status=403, code="forbidden")
    assert _set_role(client, team["owner"], team["admin2"], "member").status_code == 302
    team["admin2"].refresh_from_db()
    assert team["admin2"].role == Role.MEMBER


def test_owner_role_changes_only_by_transfer(client: Client, team: dict[str, Membership]) -> None:
    assert_error(_set_role(client, team["admin"], team["owner"], "member"), status=403, code="forbidden")
    assert_error(_set_role(client, team["admin"], team["member"], "owner"), status=403, code="forbidden")
    assert _set_role(client, team["owner"], team["member"], "owner").status_code == 302
    workspace = Workspace.objects.get(pk=team["owner"].workspace_id)
    assert workspace.owner_id == team["member"].user_id
    roles = dict(Membership.objects.filter(workspace=workspace).values_list("user_id", "role"))
    assert roles[team["member"].user_id] == Role.OWNER
    assert roles[team["owner"].user_id] == Role.ADMIN


def test_unknown_role_is_a_clear_error(client: Client, team: dict[str, Membership]) -> None:
    error = assert_error(_set_role(client, team["owner"], team["member"], "emperor"), status=400, code="invalid")
    assert "emperor" in error["message"]
    team["member"].refresh_from_db()
    assert team["member"].role == Role.MEMBER


def test_outsider_sees_not_found_for_existing_and_missing_workspaces(
    client: Client, team: dict[str, Membership]
) -> None:
    client.force_login(make_user())
    existing = client.get(f"/w/{team['owner'].workspace.slug}/")
    missing = client.get("/w/no-such-workspace/")
    assert_error(existing, status=404, code="not_found")
    assert_error(missing, status=404, code="not_found")
    message = re.compile(rb'<p class="error"[^>]*>(.*?)</p>')
    assert message.findall(existing.content) == message.findall(missing.content) == [b"Workspace not found."]


def test_outsider_cannot_change_roles(client: Client, team: dict[str, Membership]) -> None:
    outsider = make_user()
    client.force_login(outsider)
    response = client.post(
        f"/w/{team['owner'].workspace.slug}/members/{team['member'].user_id}/role/", {"role": "admin"}
    )
    assert_error(response, status=404, code="not_found")


def test_members_page_shows_role_controls_only_to_admins(client: Client, team: dict[str, Membership]) -> None:
    slug = team["owner"].workspace.slug
    client.force_login(team["admin"].user)
    assert b'<select name="role"' in client.get(f"/w/{slug}/members/").content
    client.force_login(team["member"].user)
    page = client.get(f"/w/{slug}/members/")
    assert page.status_code == 200
    assert b"Mo Member" in page.content
    assert b'<select name="role"' not in page.content


def test_create_workspace_page_makes_a_unique_slug(client: Client) -> None:
    user = make_user()
    client.force_login(user)
    first = client.post("/w/new/", {"name": "Design Team"})
    second = client.post("/w/new/", {"name": "Design Team"})
    slugs = list(Workspace.objects.filter(name="Design Team").values_list("slug", flat=True))
    assert len(set(slugs)) == 2
    assert first["Location"] == "/w/design-team/"
    assert second["Location"].startswith("/w/design-team-")
    empty = client.post("/w/new/", {"name": "   "})
    assert empty.status_code == 400
    assert b"needs a name" in empty.content


def test_owner_cannot_leave_and_admin_cannot_remove_admin(team: dict[str, Membership]) -> None:
    with pytest.raises(PermissionDenied):
        actions.membership_remove(actor=team["owner"], target=team["owner"])
    with pytest.raises(PermissionDenied):
        actions.membership_remove(actor=team["admin"], target=team["admin2"])
    actions.membership_remove(actor=team["member"], target=team["member"])  # leaving is always allowed
    assert not Membership.objects.filter(pk=team["member"].pk).exists()
    with pytest.raises(InvalidInput):
        actions.membership_add(workspace=team["owner"].workspace, user=make_user(), role=Role.OWNER)

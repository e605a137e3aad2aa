"""The Settings area's sections: add one ``Section`` to ``SECTIONS`` to add a page.

A section is a label, the name of its URL (taking no arguments) and who may see it. Its view
renders with :func:`render_section`, which draws the navigation around the page::

    Section("tokens", "Access tokens", "settings_tokens")

    def tokens(request):
        return render_section(request, "tokens", "settings/tokens.html", {...})
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

if TYPE_CHECKING:
    from mathia.accounts.models import User


def _everyone(user: User) -> bool:
    return True


def _workspace_admins(user: User) -> bool:
    from mathia.workspaces.models import ADMIN_ROLES, Membership

    return Membership.objects.filter(user=user, role__in=ADMIN_ROLES).exists()


@dataclass(frozen=True)
class Section:
    key: str
    label: str
    url_name: str
    visible: Callable[[User], bool] = _everyone


SECTIONS: list[Section] = [
    Section("profile", "Profile", "settings_profile"),
    Section("goals", "Goals", "settings_goals"),
    Section("wallet", "Wallet", "settings_wallet_home", visible=_workspace_admins),
    Section("tokens", "Access tokens", "mcp_tokens"),
    Section("mcp", "MCP servers", "mcp_settings", visible=_workspace_admins),
]


def settings_nav(user: User, current: str) -> list[dict[str, Any]]:
    return [
        {"key": s.key, "label": s.label, "url": reverse(s.url_name), "current": s.key == current}
        for s in SECTIONS
        if s.visible(user)
    ]


def render_section(
    request: HttpRequest, key: str, template: str, context: dict[str, Any] | None = None, *, status: int = 200
) -> HttpResponse:
    """Render a section's page (its template extends ``settings/base.html``) with the navigation."""
    from mathia.core.http import request_user

    page = {**(context or {}), "settings_nav": settings_nav(request_user(request), key), "section": key}
    return render(request, template, page, status=status)

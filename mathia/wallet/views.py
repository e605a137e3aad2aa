"""Settings → Wallet: a workspace's balance and ledger, for its owners and admins."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from mathia.core.errors import NotFound
from mathia.core.http import request_user
from mathia.usersettings.sections import render_section
from mathia.wallet.access import access_wallet_for_user
from mathia.wallet.billing import call_credits_max
from mathia.wallet.selectors import ledger_page
from mathia.workspaces.models import ADMIN_ROLES
from mathia.workspaces.selectors import memberships_for_user


@login_required
def settings_wallet_home(request: HttpRequest) -> HttpResponse:
    """The wallet of the first workspace the person administers (their default one first)."""
    admin_of = [m for m in memberships_for_user(user=request_user(request)) if m.role in ADMIN_ROLES]
    if not admin_of:
        raise NotFound("Wallet not found.")
    return redirect("settings_wallet", slug=admin_of[0].workspace.slug)


@login_required
def settings_wallet(request: HttpRequest, slug: str) -> HttpResponse:
    user = request_user(request)
    access = access_wallet_for_user(user=user, slug=slug)
    wallet = access.wallet
    per_call = call_credits_max()
    low = wallet.balance < max(settings.WALLET_LOW_BALANCE, per_call)
    context = {
        "wallet": wallet,
        "workspace": access.membership.workspace,
        "page": ledger_page(wallet=wallet, page=request.GET.get("page")),
        "low": low,
        "per_call": per_call,
        "low_threshold": settings.WALLET_LOW_BALANCE,
        "admin_workspaces": [m.workspace for m in memberships_for_user(user=user) if m.role in ADMIN_ROLES],
    }
    return render_section(request, "wallet", "settings/wallet.html", context)

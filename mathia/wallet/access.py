"""The only way code reaches a wallet on behalf of a person: workspace admins only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mathia.core.errors import NotFound
from mathia.wallet.actions import wallet_open
from mathia.wallet.models import Wallet
from mathia.workspaces.access import access_workspace_for_user
from mathia.workspaces.models import Membership

if TYPE_CHECKING:
    from mathia.accounts.models import User


@dataclass(frozen=True)
class WalletAccess:
    wallet: Wallet
    membership: Membership


def access_wallet_for_user(*, user: User, slug: str) -> WalletAccess:
    """The wallet of workspace ``slug`` for one of its owners or admins.

    A member who is not an admin gets the same "not found" as a stranger: the wallet is not
    theirs to see.
    """
    membership = access_workspace_for_user(user=user, slug=slug)
    if not membership.is_admin:
        raise NotFound("Wallet not found.")
    return WalletAccess(wallet=wallet_open(workspace_id=membership.workspace_id), membership=membership)

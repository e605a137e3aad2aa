"""Reads for wallets: the balance and ledger an admin sees, and the reconciliation."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.paginator import Page, Paginator
from django.db.models import Case, F, OuterRef, Q, Subquery, Sum, Value, When, Window
from django.db.models.functions import Coalesce, Lag

from mathia.wallet.models import EntryKind, LedgerEntry, Wallet

LEDGER_PAGE_SIZE = 25

_SIGNED = Case(When(kind=EntryKind.CREDIT, then=F("amount")), default=-F("amount"))
_WALLET_SIGNED = Case(When(entries__kind=EntryKind.CREDIT, then=F("entries__amount")), default=-F("entries__amount"))


def ledger_page(*, wallet: Wallet, page: int | str | None) -> Page[LedgerEntry]:
    """One page of the ledger, newest first (a page past the end gives the last page)."""
    entries = LedgerEntry.objects.filter(wallet=wallet).select_related("actor").order_by("-id")
    return Paginator(entries, LEDGER_PAGE_SIZE).get_page(page)


@dataclass(frozen=True)
class Mismatch:
    wallet_id: int
    workspace_id: int
    balance: int
    ledger_sum: int
    last_balance_after: int | None
    broken_entries: list[int]  # entries whose balance_after is not the previous one plus their amount

    @property
    def difference(self) -> int:
        return self.balance - self.ledger_sum


def wallet_mismatches() -> list[Mismatch]:
    """Every wallet whose balance is not the sum of its ledger, or whose ledger does not chain."""
    last_after = LedgerEntry.objects.filter(wallet=OuterRef("pk")).order_by("-id").values("balance_after")[:1]
    wallets = Wallet.objects.annotate(
        ledger_sum=Coalesce(Sum(_WALLET_SIGNED, filter=Q(entries__isnull=False)), Value(0)),
        last_after=Subquery(last_after),
    ).values_list("pk", "workspace_id", "balance", "ledger_sum", "last_after")
    chained = LedgerEntry.objects.annotate(
        previous=Window(Lag("balance_after"), partition_by=[F("wallet_id")], order_by=F("id").asc()),
        signed=_SIGNED,
    )
    # Filtering on a window function: Django wraps the query, so the database does the comparing.
    out_of_chain = chained.exclude(balance_after=Coalesce(F("previous"), Value(0)) + F("signed"))
    broken: dict[int, list[int]] = {}
    for entry_id, wallet_id in out_of_chain.values_list("pk", "wallet_id").iterator():
        broken.setdefault(wallet_id, []).append(entry_id)
    found = []
    for pk, workspace_id, balance, ledger_sum, last in wallets:
        last_ok = (last is None and balance == 0) or last == balance
        if balance != ledger_sum or not last_ok or pk in broken:
            found.append(
                Mismatch(
                    wallet_id=pk,
                    workspace_id=workspace_id,
                    balance=balance,
                    ledger_sum=ledger_sum,
                    last_balance_after=last,
                    broken_entries=broken.get(pk, []),
                )
            )
    return found

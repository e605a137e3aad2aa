"""Writes for wallets: credit and debit, atomic, never overdrawn, never applied twice.

Each change runs in one transaction that first locks the wallet's row
(``SELECT ... FOR UPDATE``; on SQLite the ``BEGIN IMMEDIATE`` write lock does the same), then
looks the idempotency key up, then moves the balance with a conditional ``UPDATE`` (``balance
>= amount`` for a debit) and writes the ledger entry with the balance after it. Concurrent
changes to one wallet therefore apply one at a time, in ledger order; a retry with a key
already used returns the entry it made and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog
from django.db import IntegrityError, transaction
from django.db.models import F

from mathia.core.clock import Clock, system_clock
from mathia.core.errors import AppError, InvalidInput, NotFound
from mathia.wallet.models import EntryKind, EntryReason, LedgerEntry, Wallet
from mathia.wallet.selectors import Mismatch, wallet_mismatches

if TYPE_CHECKING:
    from mathia.accounts.models import User
    from mathia.assistant.models import UsageRecord

log = structlog.get_logger(__name__)

IDEMPOTENCY_KEY_MAX = 128
AMOUNT_MAX = 10**12  # far beyond any real grant; catches a typo of many zeros


class InsufficientCredits(AppError):
    code = "insufficient_credits"
    http_status = 402

    def __init__(self, *, balance: int, needed: int) -> None:
        super().__init__(f"The wallet has {balance} credits; this needs {needed}.", balance=balance, needed=needed)
        self.balance = balance
        self.needed = needed


class IdempotencyConflict(AppError):
    code = "idempotency_conflict"
    http_status = 409


@dataclass(frozen=True)
class Applied:
    entry: LedgerEntry
    replayed: bool  # True when the key had been used: nothing changed this time


def wallet_open(*, workspace_id: int, clock: Clock = system_clock) -> Wallet:
    """The workspace's wallet, created empty the first time."""
    wallet, _ = Wallet.objects.get_or_create(workspace_id=workspace_id, defaults={"updated_at": clock.now()})
    return wallet


def _check(amount: int, idempotency_key: str, reason: str) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise InvalidInput("The amount must be a whole number of credits above zero.", field="amount")
    if amount > AMOUNT_MAX:
        raise InvalidInput(f"The amount must be at most {AMOUNT_MAX} credits.", field="amount")
    if not idempotency_key or len(idempotency_key) > IDEMPOTENCY_KEY_MAX:
        raise InvalidInput(
            f"An idempotency key of 1 to {IDEMPOTENCY_KEY_MAX} characters is required.", field="idempotency_key"
        )
    if reason not in EntryReason.values:
        raise InvalidInput(f"Unknown reason {reason!r}.", field="reason")


def _replay(existing: LedgerEntry, *, wallet_id: int, kind: str, amount: int | None) -> Applied:
    """The entry a used key made; ``amount`` None accepts any amount (a debit capped at the balance)."""
    if existing.wallet_id != wallet_id or existing.kind != kind or amount not in (None, existing.amount):
        raise IdempotencyConflict("That idempotency key was already used for a different change.")
    return Applied(entry=existing, replayed=True)


def _apply(
    *,
    wallet_id: int,
    kind: str,
    amount: int,
    reason: str,
    idempotency_key: str,
    actor: User | None,
    usage: UsageRecord | None,
    note: str,
    clock: Clock,
    up_to_balance: bool = False,
) -> Applied | None:
    _check(amount, idempotency_key, reason)
    try:
        with transaction.atomic():
            locked = Wallet.objects.select_for_update().filter(pk=wallet_id).values_list("balance", flat=True).first()
            if locked is None:
                raise NotFound("Wallet not found.")
            existing = LedgerEntry.objects.filter(idempotency_key=idempotency_key).first()
            if existing is not None:
                return _replay(existing, wallet_id=wallet_id, kind=kind, amount=None if up_to_balance else amount)
            now = clock.now()
            if up_to_balance:
                amount = min(amount, locked)
                if amount == 0:
                    return None
            if kind == EntryKind.DEBIT:
                # Conditional even under the lock: the database, not this process, has the last word.
                moved = Wallet.objects.filter(pk=wallet_id, balance__gte=amount).update(
                    balance=F("balance") - amount, updated_at=now
                )
                if not moved:
                    raise InsufficientCredits(balance=locked, needed=amount)
            else:
                Wallet.objects.filter(pk=wallet_id).update(balance=F("balance") + amount, updated_at=now)
            balance_after = Wallet.objects.filter(pk=wallet_id).values_list("balance", flat=True).get()
            entry = LedgerEntry.objects.create(
                wallet_id=wallet_id,
                kind=kind,
                amount=amount,
                balance_after=balance_after,
                reason=reason,
                note=note[:200],
                idempotency_key=idempotency_key,
                actor=actor,
                usage=usage,
                created_at=now,
            )
    except IntegrityError:
        # The same key on another wallet, committed meanwhile: the unique index refused it.
        existing = LedgerEntry.objects.filter(idempotency_key=idempotency_key).first()
        if existing is None:
            raise
        return _replay(existing, wallet_id=wallet_id, kind=kind, amount=None if up_to_balance else amount)
    log.info(
        "wallet_changed",
        wallet_id=wallet_id,
        kind=str(kind),
        amount=amount,
        balance_after=balance_after,
        reason=str(reason),
        entry_id=entry.pk,
    )
    return Applied(entry=entry, replayed=False)


def wallet_credit(
    *,
    wallet_id: int,
    amount: int,
    reason: str,
    idempotency_key: str,
    actor: User | None = None,
    note: str = "",
    clock: Clock = system_clock,
) -> Applied:
    """Add ``amount`` credits, once per ``idempotency_key``."""
    applied = _apply(
        wallet_id=wallet_id,
        kind=EntryKind.CREDIT,
        amount=amount,
        reason=reason,
        idempotency_key=idempotency_key,
        actor=actor,
        usage=None,
        note=note,
        clock=clock,
    )
    assert applied is not None
    return applied


def wallet_debit(
    *,
    wallet_id: int,
    amount: int,
    reason: str,
    idempotency_key: str,
    actor: User | None = None,
    usage: UsageRecord | None = None,
    note: str = "",
    clock: Clock = system_clock,
) -> Applied:
    """Take ``amount`` credits, once per ``idempotency_key``; raises InsufficientCredits, never overdraws."""
    applied = _apply(
        wallet_id=wallet_id,
        kind=EntryKind.DEBIT,
        amount=amount,
        reason=reason,
        idempotency_key=idempotency_key,
        actor=actor,
        usage=usage,
        note=note,
        clock=clock,
    )
    assert applied is not None
    return applied


def wallet_debit_up_to(
    *,
    wallet_id: int,
    amount: int,
    reason: str,
    idempotency_key: str,
    actor: User | None = None,
    usage: UsageRecord | None = None,
    note: str = "",
    clock: Clock = system_clock,
) -> Applied | None:
    """Take ``amount`` credits or, if fewer are left, all that is left (None when the wallet is empty).

    For a cost already incurred (a finished answer): the call cannot be undone, and the
    balance still never goes below zero. The caller logs what went unpaid.
    """
    return _apply(
        wallet_id=wallet_id,
        kind=EntryKind.DEBIT,
        amount=amount,
        reason=reason,
        idempotency_key=idempotency_key,
        actor=actor,
        usage=usage,
        note=note,
        clock=clock,
        up_to_balance=True,
    )


def wallet_open_with_grant(*, workspace_id: int, owner_id: int, grant: int, clock: Clock = system_clock) -> Wallet:
    """The wallet of a person's first (default) workspace, with the starting grant.

    Once per person, not per workspace: the key names the owner, so creating more workspaces
    (``/w/new/`` has no limit) mints no credits.
    """
    wallet = wallet_open(workspace_id=workspace_id, clock=clock)
    if grant > 0:
        try:
            wallet_credit(
                wallet_id=wallet.pk,
                amount=grant,
                reason=EntryReason.STARTING_GRANT,
                idempotency_key=f"starting-grant:user:{owner_id}",
                note="Welcome credits for a new workspace",
                clock=clock,
            )
        except IdempotencyConflict:  # this person had theirs, in another workspace
            log.info("wallet_starting_grant_already_given", owner_id=owner_id, workspace_id=workspace_id)
        wallet.refresh_from_db()
    return wallet


def wallet_reconcile() -> list[Mismatch]:
    """Compare every wallet with its ledger and report each difference loudly.

    Nothing is corrected automatically: a difference means something wrote to a balance
    outside these actions, and a person must find out what before money moves.
    """
    from django.conf import settings
    from django.core.mail import send_mail

    mismatches = wallet_mismatches()
    for mismatch in mismatches:
        log.critical(
            "wallet_ledger_mismatch",
            wallet_id=mismatch.wallet_id,
            workspace_id=mismatch.workspace_id,
            balance=mismatch.balance,
            ledger_sum=mismatch.ledger_sum,
            difference=mismatch.difference,
            last_balance_after=mismatch.last_balance_after,
            broken_entries=mismatch.broken_entries[:20],
        )
    if mismatches and settings.WALLET_ALERT_EMAILS:
        lines = [
            f"wallet {m.wallet_id} (workspace {m.workspace_id}): balance {m.balance}, ledger sum {m.ledger_sum}, "
            f"difference {m.difference:+d}, entries out of chain: {m.broken_entries[:20] or 'none'}"
            for m in mismatches
        ]
        try:
            send_mail(
                subject=f"[Mathia] {len(mismatches)} wallet(s) do not match their ledger",
                message="The daily reconciliation found:\n\n" + "\n".join(lines),
                from_email=None,
                recipient_list=settings.WALLET_ALERT_EMAILS,
            )
        except Exception:  # the log line above is the record; mail is a courtesy
            log.exception("wallet_reconcile_mail_failed")
    log.info("wallet_reconciled", mismatches=len(mismatches))
    return mismatches

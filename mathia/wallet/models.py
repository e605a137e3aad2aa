"""A workspace's credits: a balance and the append-only ledger that explains it.

The balance is an integer number of credits and never goes below zero (a database check).
Every change is one :class:`LedgerEntry`, written in the same transaction as the balance
update while the wallet's row is locked (``wallet/actions.py``), so entries are ordered as
they were applied and each records the balance after it. Entries are never updated or
deleted: a mistake is corrected by a new entry.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q


class Wallet(models.Model):
    workspace = models.OneToOneField("workspaces.Workspace", on_delete=models.CASCADE, related_name="wallet")
    balance = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(balance__gte=0), name="wallet_balance_not_negative")]

    def __str__(self) -> str:
        return f"wallet of workspace {self.workspace_id}: {self.balance} credits"


class EntryKind(models.TextChoices):
    CREDIT = "credit", "Credit"
    DEBIT = "debit", "Debit"


class EntryReason(models.TextChoices):
    STARTING_GRANT = "starting_grant", "Starting grant"
    STAFF_CREDIT = "staff_credit", "Credit by staff"
    USAGE = "usage", "Assistant usage"
    ADJUSTMENT = "adjustment", "Adjustment"


class AppendOnly(Exception):
    """Ledger entries are written once; corrections are new entries."""


class LedgerEntry(models.Model):
    wallet = models.ForeignKey(Wallet, on_delete=models.CASCADE, related_name="entries")
    kind = models.CharField(max_length=8, choices=EntryKind.choices)
    amount = models.BigIntegerField()
    balance_after = models.BigIntegerField()
    reason = models.CharField(max_length=20, choices=EntryReason.choices)
    note = models.CharField(max_length=200, blank=True)
    # Applying the same change twice (a retried request, a redelivered task) finds this key
    # already used and returns the entry it made, instead of charging again.
    idempotency_key = models.CharField(max_length=128, unique=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    usage = models.OneToOneField(
        "assistant.UsageRecord", on_delete=models.SET_NULL, null=True, blank=True, related_name="ledger_entry"
    )
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="ledger_amount_positive"),
            models.CheckConstraint(condition=Q(balance_after__gte=0), name="ledger_balance_after_not_negative"),
        ]
        indexes = [models.Index(fields=["wallet", "-id"], name="ledger_wallet_newest")]
        verbose_name_plural = "ledger entries"

    def __str__(self) -> str:
        sign = "+" if self.kind == EntryKind.CREDIT else "-"
        return f"{sign}{self.amount} ({self.get_reason_display()})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not self._state.adding:
            raise AppendOnly("Ledger entries cannot be changed; add a new entry instead.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise AppendOnly("Ledger entries cannot be deleted; add a new entry instead.")

    @property
    def signed_amount(self) -> int:
        return self.amount if self.kind == EntryKind.CREDIT else -self.amount

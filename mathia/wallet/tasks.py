"""Celery adapters for the wallet."""

from __future__ import annotations

from celery import shared_task

from mathia.wallet.actions import wallet_reconcile


@shared_task(name="wallet.reconcile", ignore_result=True)
def reconcile() -> int:
    """Daily (Beat): check every wallet against its ledger; the number of wallets that disagree."""
    return len(wallet_reconcile())

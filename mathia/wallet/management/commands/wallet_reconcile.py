"""Run the reconciliation now (Beat runs it daily); exits 1 when a wallet disagrees with its ledger."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from mathia.wallet.actions import wallet_reconcile


class Command(BaseCommand):
    help = "Check that every wallet's balance equals the sum of its ledger."

    def handle(self, *args: Any, **options: Any) -> None:
        mismatches = wallet_reconcile()
        for m in mismatches:
            self.stderr.write(
                f"wallet {m.wallet_id} (workspace {m.workspace_id}): balance {m.balance}, "
                f"ledger sum {m.ledger_sum}, difference {m.difference:+d}"
            )
        if mismatches:
            raise CommandError(f"{len(mismatches)} wallet(s) do not match their ledger.")
        self.stdout.write("Every wallet matches its ledger.")

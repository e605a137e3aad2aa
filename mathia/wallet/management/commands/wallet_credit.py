"""Staff credits from the command line: ``manage.py wallet_credit acme 1000 --reason "..." --key KEY``."""

from __future__ import annotations

import uuid
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from mathia.accounts.models import User
from mathia.core.errors import AppError
from mathia.wallet.actions import wallet_credit, wallet_open
from mathia.wallet.models import EntryReason
from mathia.workspaces.models import Workspace


class Command(BaseCommand):
    help = "Add credits to a workspace's wallet (once per --key: running it again with the same key adds nothing)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("workspace", help="the workspace's slug")
        parser.add_argument("amount", type=int, help="whole credits, above zero")
        parser.add_argument("--reason", required=True, help="why, shown in the ledger")
        parser.add_argument("--key", help="idempotency key (default: a new one, so each run credits)")
        parser.add_argument("--staff", help="email of the staff member doing this (recorded as the actor)")

    def handle(self, *args: Any, **options: Any) -> None:
        workspace = Workspace.objects.filter(slug=options["workspace"]).first()
        if workspace is None:
            raise CommandError(f"No workspace with the slug {options['workspace']!r}.")
        actor = None
        if options["staff"]:
            actor = User.objects.filter(email=options["staff"].strip().lower(), is_staff=True).first()
            if actor is None:
                raise CommandError(f"No staff user with the email {options['staff']!r}.")
        key = options["key"] or f"staff-cli:{uuid.uuid4().hex}"
        try:
            applied = wallet_credit(
                wallet_id=wallet_open(workspace_id=workspace.pk).pk,
                amount=options["amount"],
                reason=EntryReason.STAFF_CREDIT,
                idempotency_key=key,
                actor=actor,
                note=options["reason"],
            )
        except AppError as error:
            raise CommandError(error.message) from None
        entry = applied.entry
        if applied.replayed:
            self.stdout.write(f"Already applied (key {key}): entry {entry.pk}, nothing added.")
        else:
            self.stdout.write(f"Added {entry.amount} credits to {workspace.slug}; balance {entry.balance_after}.")

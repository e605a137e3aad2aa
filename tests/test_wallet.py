"""Wallets: exact credits and debits under concurrency, an append-only ledger, the ways money
comes in (starting grant, staff in the admin and on the command line), Settings → Wallet for
admins only, and the daily reconciliation catching a balance that disagrees with its ledger."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from io import StringIO
from typing import Any

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.db import connection, connections
from django.test import Client

from mathia.accounts.models import User
from mathia.core.errors import InvalidInput
from mathia.wallet.actions import (
    IdempotencyConflict,
    InsufficientCredits,
    wallet_credit,
    wallet_debit,
    wallet_debit_up_to,
    wallet_open,
)
from mathia.wallet.models import AppendOnly, EntryKind, EntryReason, LedgerEntry, Wallet
from mathia.wallet.selectors import wallet_mismatches
from mathia.wallet.tasks import reconcile
from mathia.workspaces.actions import membership_add, workspace_create
from mathia.workspaces.models import Membership
from tests.helpers import assert_error, make_user

pytestmark = pytest.mark.django_db(transaction=True)


def _empty_wallet(settings: Any, name: str = "Acme") -> tuple[User, Wallet]:
    settings.WALLET_STARTING_GRANT = 0
    owner = make_user(display_name="Ada")
    workspace = workspace_create(owner=owner, name=name)
    return owner, Wallet.objects.get(workspace=workspace)


def _ledger_sum(wallet: Wallet) -> int:
    return sum(e.signed_amount for e in LedgerEntry.objects.filter(wallet=wallet))


# --- credit and debit ----------------------------------------------------------------------


def test_credit_then_debit_records_each_change_with_the_balance_after(settings: Any) -> None:
    ada, wallet = _empty_wallet(settings)
    credit = wallet_credit(
        wallet_id=wallet.pk, amount=100, reason=EntryReason.STAFF_CREDIT, idempotency_key="c1", actor=ada
    )
    debit = wallet_debit(wallet_id=wallet.pk, amount=30, reason=EntryReason.USAGE, idempotency_key="d1")
    assert (credit.entry.kind, credit.entry.amount, credit.entry.balance_after) == (EntryKind.CREDIT, 100, 100)
    assert (debit.entry.kind, debit.entry.amount, debit.entry.balance_after) == (EntryKind.DEBIT, 30, 70)
    assert credit.entry.actor == ada
    assert debit.entry.actor is None
    wallet.refresh_from_db()
    assert wallet.balance == 70 == _ledger_sum(wallet)


def test_a_debit_larger_than_the_balance_is_refused_and_changes_nothing(settings: Any) -> None:
    _, wallet = _empty_wallet(settings)
    wallet_credit(wallet_id=wallet.pk, amount=10, reason=EntryReason.STAFF_CREDIT, idempotency_key="c1")
    with pytest.raises(InsufficientCredits) as refused:
        wallet_debit(wallet_id=wallet.pk, amount=11, reason=EntryReason.USAGE, idempotency_key="d1")
    assert (refused.value.code, refused.value.balance, refused.value.needed) == ("insufficient_credits", 10, 11)
    wallet.refresh_from_db()
    assert wallet.balance == 10
    assert not LedgerEntry.objects.filter(idempotency_key="d1").exists()
    # Exactly the balance is fine, and leaves zero.
    wallet_debit(wallet_id=wallet.pk, amount=10, reason=EntryReason.USAGE, idempotency_key="d2")
    wallet.refresh_from_db()
    assert wallet.balance == 0


def test_a_retry_with_the_same_key_charges_once_and_a_different_change_with_it_is_refused(settings: Any) -> None:
    _, wallet = _empty_wallet(settings)
    wallet_credit(wallet_id=wallet.pk, amount=50, reason=EntryReason.STAFF_CREDIT, idempotency_key="c1")
    first = wallet_debit(wallet_id=wallet.pk, amount=20, reason=EntryReason.USAGE, idempotency_key="answer-7")
    again = wallet_debit(wallet_id=wallet.pk, amount=20, reason=EntryReason.USAGE, idempotency_key="answer-7")
    assert not first.replayed
    assert again.replayed
    assert again.entry.pk == first.entry.pk
    wallet.refresh_from_db()
    assert wallet.balance == 30
    with pytest.raises(IdempotencyConflict):
        wallet_debit(wallet_id=wallet.pk, amount=21, reason=EntryReason.USAGE, idempotency_key="answer-7")
    with pytest.raises(IdempotencyConflict):
        wallet_credit(wallet_id=wallet.pk, amount=20, reason=EntryReason.STAFF_CREDIT, idempotency_key="answer-7")
    _, other = _empty_wallet(settings, name="Other")
    wallet_credit(wallet_id=other.pk, amount=50, reason=EntryReason.STAFF_CREDIT, idempotency_key="c-other")
    with pytest.raises(IdempotencyConflict):  # a key is unique across all wallets
        wallet_debit(wallet_id=other.pk, amount=20, reason=EntryReason.USAGE, idempotency_key="answer-7")
    wallet.refresh_from_db()
    other.refresh_from_db()
    assert (wallet.balance, other.balance) == (30, 50)


@pytest.mark.parametrize("amount", [0, -5, 2.5, True, "10"])
def test_amounts_must_be_whole_positive_credits(settings: Any, amount: Any) -> None:
    _, wallet = _empty_wallet(settings)
    with pytest.raises(InvalidInput, match="whole number of credits") as error:
        wallet_credit(wallet_id=wallet.pk, amount=amount, reason=EntryReason.STAFF_CREDIT, idempotency_key="k")
    assert getattr(error.value, "code", None) == "invalid"
    assert not LedgerEntry.objects.exists()


def test_a_debit_for_a_cost_already_incurred_takes_what_is_left_never_more(settings: Any) -> None:
    _, wallet = _empty_wallet(settings)
    wallet_credit(wallet_id=wallet.pk, amount=7, reason=EntryReason.STAFF_CREDIT, idempotency_key="c1")
    applied = wallet_debit_up_to(wallet_id=wallet.pk, amount=12, reason=EntryReason.USAGE, idempotency_key="u1")
    assert applied is not None
    assert applied.entry.amount == 7
    assert applied.entry.balance_after == 0
    assert wallet_debit_up_to(wallet_id=wallet.pk, amount=12, reason=EntryReason.USAGE, idempotency_key="u2") is None
    replay = wallet_debit_up_to(wallet_id=wallet.pk, amount=12, reason=EntryReason.USAGE, idempotency_key="u1")
    assert replay is not None
    assert replay.replayed
    assert replay.entry.pk == applied.entry.pk
    wallet.refresh_from_db()
    assert wallet.balance == 0 == _ledger_sum(wallet)


def test_ledger_entries_cannot_be_changed_or_deleted(settings: Any) -> None:
    _, wallet = _empty_wallet(settings)
    entry = wallet_credit(wallet_id=wallet.pk, amount=5, reason=EntryReason.STAFF_CREDIT, idempotency_key="c1").entry
    entry.amount = 500
    with pytest.raises(AppendOnly):
        entry.save()
    with pytest.raises(AppendOnly):
        entry.delete()
    assert LedgerEntry.objects.get(pk=entry.pk).amount == 5


def test_the_database_itself_refuses_a_negative_balance(settings: Any) -> None:
    from django.db import IntegrityError, transaction

    _, wallet = _empty_wallet(settings)
    with pytest.raises(IntegrityError), transaction.atomic():
        Wallet.objects.filter(pk=wallet.pk).update(balance=-1)


# --- concurrency ---------------------------------------------------------------------------


def test_concurrent_debits_never_overdraw_and_retries_charge_once(settings: Any) -> None:
    """50 threads x 20 debits on PostgreSQL (8 x 20 on SQLite, whose writers queue on one file lock).

    Each thread makes its own 20 debits and, right after each, retries its neighbour's debit
    with the neighbour's key, so every debit races with a retry of itself on another connection.
    The balance covers about half of what is asked: each key charges at most once, never below zero.
    """
    threads = 50 if connection.vendor == "postgresql" else 8
    per_thread = 20
    _, wallet = _empty_wallet(settings)
    amounts = {f"k{t}-{i}": 1 + (t * 7 + i * 3) % 5 for t in range(threads) for i in range(per_thread)}
    requested = sum(amounts.values())
    initial = requested // 2
    wallet_credit(wallet_id=wallet.pk, amount=initial, reason=EntryReason.STAFF_CREDIT, idempotency_key="seed")

    barrier = threading.Barrier(threads)
    lock = threading.Lock()
    charged: dict[str, set[int]] = {}
    refused: Counter[str] = Counter()
    replays: list[tuple[str, int]] = []
    errors: list[BaseException] = []

    def worker(t: int) -> None:
        try:
            barrier.wait(timeout=60)
            for i in range(per_thread):
                # Its own debit, then a retry of the neighbour's (same key, same amount).
                for key in (f"k{t}-{i}", f"k{(t + 1) % threads}-{i}"):
                    try:
                        applied = wallet_debit(
                            wallet_id=wallet.pk, amount=amounts[key], reason=EntryReason.USAGE, idempotency_key=key
                        )
                    except InsufficientCredits:
                        with lock:
                            refused[key] += 1
                        continue
                    with lock:
                        charged.setdefault(key, set()).add(applied.entry.pk)
                        if applied.replayed:
                            replays.append((key, applied.entry.pk))
        except BaseException as error:  # reported below: a thread's failure must fail the test
            errors.append(error)
        finally:
            connections.close_all()

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=110)
    assert not any(thread.is_alive() for thread in pool)
    assert not errors, errors

    wallet.refresh_from_db()
    debits = list(LedgerEntry.objects.filter(wallet=wallet, kind=EntryKind.DEBIT).order_by("id"))
    assert all(len(ids) == 1 for ids in charged.values())  # every retry got the entry its key made
    assert Counter(e.idempotency_key for e in debits) == Counter(charged.keys())  # one entry per key
    spent = sum(amounts[key] for key in charged)
    assert wallet.balance == initial - spent
    assert wallet.balance >= 0
    assert 0 < len(charged) < len(amounts)  # some, not all, fit
    assert replays
    assert refused
    # The ledger chains: each entry's balance_after is the previous one minus its amount.
    balance = initial
    for entry in debits:
        balance -= entry.amount
        assert entry.balance_after == balance
    assert balance == wallet.balance == _ledger_sum(wallet)
    assert wallet_mismatches() == []


# --- the ways in ---------------------------------------------------------------------------


def test_the_starting_grant_comes_once_per_person_with_their_first_workspace(settings: Any, client: Client) -> None:
    settings.WALLET_STARTING_GRANT = 250
    ada = make_user(display_name="Ada")
    default = Membership.objects.get(user=ada, is_default=True).workspace
    wallet = Wallet.objects.get(workspace=default)
    assert wallet.balance == 250
    entry = LedgerEntry.objects.get(wallet=wallet)
    assert (entry.reason, entry.amount, entry.kind) == (EntryReason.STARTING_GRANT, 250, EntryKind.CREDIT)
    assert entry.idempotency_key == f"starting-grant:user:{ada.pk}"
    # More workspaces, by the action or through /w/new/, bring no free credits.
    more = workspace_create(owner=ada, name="Acme")
    client.force_login(ada)
    for n in range(3):
        assert client.post("/w/new/", {"name": f"Farm {n}"}).status_code == 302
    assert Wallet.objects.filter(workspace__owner=ada).count() == 5
    assert Wallet.objects.get(workspace=more).balance == 0
    assert LedgerEntry.objects.filter(reason=EntryReason.STARTING_GRANT).count() == 1
    # A second default workspace for the same person (it should not happen) grants nothing either.
    from mathia.wallet.actions import wallet_open_with_grant

    wallet_open_with_grant(workspace_id=more.pk, owner_id=ada.pk, grant=250)
    assert Wallet.objects.get(workspace=more).balance == 0
    settings.WALLET_STARTING_GRANT = 0
    bob = make_user(display_name="Bob")
    assert Wallet.objects.get(workspace__owner=bob).balance == 0
    assert not LedgerEntry.objects.filter(wallet__workspace__owner=bob).exists()


def test_staff_credit_from_the_command_line_is_idempotent_per_key(settings: Any) -> None:
    ada, wallet = _empty_wallet(settings)
    staff = make_user(email="staff@example.com", is_staff=True)
    out = StringIO()
    args = [wallet.workspace.slug, "300", "--reason", "Pilot customer", "--key", "ticket-42", "--staff", staff.email]
    call_command("wallet_credit", *args, stdout=out)
    call_command("wallet_credit", *args, stdout=out)
    assert "Added 300 credits" in out.getvalue()
    assert "Already applied" in out.getvalue()
    entry = LedgerEntry.objects.get(wallet=wallet)
    assert (entry.amount, entry.reason, entry.note, entry.actor) == (
        300,
        EntryReason.STAFF_CREDIT,
        "Pilot customer",
        staff,
    )
    with pytest.raises(CommandError, match="No workspace"):
        call_command("wallet_credit", "nope", "5", "--reason", "x")
    with pytest.raises(CommandError, match="whole number"):
        call_command("wallet_credit", wallet.workspace.slug, "0", "--reason", "x")
    with pytest.raises(CommandError, match="No staff user"):
        call_command("wallet_credit", wallet.workspace.slug, "5", "--reason", "x", "--staff", ada.email)


def test_staff_credit_in_the_admin_applies_once_on_a_double_submit(settings: Any, client: Client) -> None:
    _, wallet = _empty_wallet(settings)
    root = User.objects.create_superuser(email="root@example.com", password="a-long-passphrase-42")
    client.force_login(root)
    page = client.get(f"/admin/wallet/wallet/{wallet.pk}/credit/")
    assert page.status_code == 200
    key = page.context["form"].initial["idempotency_key"]
    form = {"amount": "120", "note": "Goodwill", "idempotency_key": key}
    assert client.post(f"/admin/wallet/wallet/{wallet.pk}/credit/", form).status_code == 302
    assert client.post(f"/admin/wallet/wallet/{wallet.pk}/credit/", form).status_code == 302
    wallet.refresh_from_db()
    assert wallet.balance == 120
    assert LedgerEntry.objects.get(wallet=wallet).actor == root
    bad = client.post(f"/admin/wallet/wallet/{wallet.pk}/credit/", {**form, "amount": "-3", "idempotency_key": "x"})
    assert bad.status_code == 200
    assert "amount" in bad.context["form"].errors
    change = client.get(f"/admin/wallet/wallet/{wallet.pk}/change/")
    assert change.status_code == 200
    assert b"Goodwill" in change.content
    assert client.get("/admin/wallet/ledgerentry/").status_code == 200


# --- Settings -> Wallet --------------------------------------------------------------------


def test_admins_see_balance_paginated_ledger_and_a_low_balance_warning(settings: Any, client: Client) -> None:
    settings.WALLET_LOW_BALANCE = 100
    ada, wallet = _empty_wallet(settings)
    for n in range(30):
        wallet_credit(
            wallet_id=wallet.pk,
            amount=n + 1,
            reason=EntryReason.STAFF_CREDIT,
            idempotency_key=f"c{n}",
            note=f"batch {n}",
        )
    client.force_login(ada)
    page = client.get(f"/settings/wallet/{wallet.workspace.slug}/")
    html = page.content.decode()
    assert page.status_code == 200
    assert '<p class="balance" id="balance">465 credits</p>' in html
    assert 'id="low-balance"' not in html
    assert html.count("data-entry-id=") == 25
    assert "batch 29" in html
    assert "batch 4 " not in html
    older = client.get(f"/settings/wallet/{wallet.workspace.slug}/?page=2").content.decode()
    assert older.count("data-entry-id=") == 5
    assert "batch 0" in older
    wallet_debit(wallet_id=wallet.pk, amount=400, reason=EntryReason.USAGE, idempotency_key="big")
    low = client.get(f"/settings/wallet/{wallet.workspace.slug}/").content.decode()
    assert 'id="low-balance"' in low
    assert "65 credits" in low
    # The nav leads there.
    assert (
        client.get("/settings/wallet/")["Location"]
        == f"/settings/wallet/{ada.workspace_memberships.get(is_default=True).workspace.slug}/"
    )


def test_only_workspace_admins_see_the_wallet(settings: Any, client: Client) -> None:
    ada, wallet = _empty_wallet(settings)
    bob = make_user(display_name="Bob")
    membership_add(workspace=wallet.workspace, user=bob)
    stranger = make_user(display_name="Cy")
    for person in (bob, stranger):
        client.force_login(person)
        assert_error(client.get(f"/settings/wallet/{wallet.workspace.slug}/"), status=404, code="not_found")
    client.force_login(bob)
    profile = client.get("/settings/profile/").content.decode()
    assert 'data-section="profile"' in profile
    assert 'data-section="goals"' in profile
    assert 'data-section="wallet"' in profile  # Bob owns his own default workspace
    Membership.objects.filter(user=bob, role="owner").update(role="member")  # now an admin of nothing
    assert 'data-section="wallet"' not in client.get("/settings/profile/").content.decode()
    assert_error(client.get("/settings/wallet/"), status=404, code="not_found")
    client.force_login(ada)
    assert client.get(f"/settings/wallet/{wallet.workspace.slug}/").status_code == 200


# --- reconciliation -----------------------------------------------------------------------


def test_reconciliation_finds_a_planted_mismatch_and_reports_it_loudly(
    settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.WALLET_ALERT_EMAILS = ["ops@example.com"]
    _, wallet = _empty_wallet(settings)
    _, healthy = _empty_wallet(settings, name="Healthy")
    for w in (wallet, healthy):
        wallet_credit(wallet_id=w.pk, amount=100, reason=EntryReason.STAFF_CREDIT, idempotency_key=f"c{w.pk}")
        wallet_debit(wallet_id=w.pk, amount=40, reason=EntryReason.USAGE, idempotency_key=f"d{w.pk}")
    assert reconcile() == 0
    assert not mail.outbox

    Wallet.objects.filter(pk=wallet.pk).update(balance=1060)  # someone wrote a balance behind the ledger's back
    caplog.set_level(logging.INFO)
    assert reconcile() == 1
    [mismatch] = wallet_mismatches()
    assert (mismatch.wallet_id, mismatch.balance, mismatch.ledger_sum, mismatch.difference) == (
        wallet.pk,
        1060,
        60,
        1000,
    )
    critical = [
        r for r in caplog.records if r.levelno == logging.CRITICAL and "wallet_ledger_mismatch" in r.getMessage()
    ]
    assert critical
    assert f"'wallet_id': {wallet.pk}" in critical[-1].getMessage()
    assert mail.outbox[-1].to == ["ops@example.com"]
    assert "difference +1000" in mail.outbox[-1].body
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError, match="1 wallet"):
        call_command("wallet_reconcile", stdout=out, stderr=err)
    assert f"wallet {wallet.pk}" in err.getvalue()


def test_reconciliation_also_catches_a_ledger_that_does_not_chain(settings: Any) -> None:
    _, wallet = _empty_wallet(settings)
    wallet_credit(wallet_id=wallet.pk, amount=100, reason=EntryReason.STAFF_CREDIT, idempotency_key="c1")
    from django.utils import timezone

    # An entry written outside the actions: the sums agree but its balance_after is wrong.
    LedgerEntry.objects.bulk_create(
        [
            LedgerEntry(
                wallet=wallet,
                kind="credit",
                amount=5,
                balance_after=999,
                reason="adjustment",
                idempotency_key="x",
                created_at=timezone.now(),
            )
        ]
    )
    Wallet.objects.filter(pk=wallet.pk).update(balance=105)
    [mismatch] = wallet_mismatches()
    assert mismatch.difference == 0
    assert mismatch.broken_entries


def test_reconciliation_runs_daily_from_beat() -> None:
    from celery.schedules import crontab
    from django.conf import settings as django_settings

    entry = django_settings.CELERY_BEAT_SCHEDULE["wallet-reconcile"]
    assert entry["task"] == "wallet.reconcile"
    assert isinstance(entry["schedule"], crontab)
    from mathia.celery import app

    assert "wallet.reconcile" in app.tasks


def test_wallet_open_is_idempotent(settings: Any) -> None:
    _, wallet = _empty_wallet(settings)
    assert wallet_open(workspace_id=wallet.workspace_id).pk == wallet.pk

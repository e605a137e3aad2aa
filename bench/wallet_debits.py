"""Wallet debits under contention: throughput and latency of ``wallet_debit``.

Runs on a throwaway database (PostgreSQL when TEST_DATABASE_URL or 127.0.0.1 answers, else
SQLite), with T threads each making N debits, either all on one wallet (every debit waits for
the wallet's row lock) or each thread on its own wallet. Prints debits/s and per-debit latency
p50/p99, and checks the final balances against the ledger.

    TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/mathia .venv/bin/python bench/wallet_debits.py
    .venv/bin/python bench/wallet_debits.py --threads 1,8,32 --debits 200
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mathia.test_settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection, connections  # noqa: E402


def run(threads: int, debits: int, *, shared: bool) -> tuple[float, list[float]]:
    from django.utils import timezone

    from mathia.accounts.models import User
    from mathia.wallet.actions import wallet_credit, wallet_open
    from mathia.wallet.models import EntryReason, Wallet
    from mathia.wallet.selectors import wallet_mismatches
    from mathia.workspaces.models import Workspace

    owner = User.objects.filter(email="bench@example.com").first() or User.objects.create_user(
        email="bench@example.com", password=None, onboarded_at=timezone.now()
    )
    wallets = []
    for n in range(1 if shared else threads):
        workspace = Workspace.objects.create(name="bench", slug=f"bench-{time.monotonic_ns()}-{n}", owner=owner)
        wallet = wallet_open(workspace_id=workspace.pk)
        wallet_credit(
            wallet_id=wallet.pk, amount=10**9, reason=EntryReason.STAFF_CREDIT, idempotency_key=f"seed-{wallet.pk}"
        )
        wallets.append(wallet)
    latencies: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(threads + 1)

    def worker(t: int) -> None:
        from mathia.wallet.actions import wallet_debit

        wallet = wallets[0 if shared else t]
        mine = []
        barrier.wait()
        for i in range(debits):
            started = time.perf_counter()
            wallet_debit(
                wallet_id=wallet.pk, amount=1, reason=EntryReason.USAGE, idempotency_key=f"b{wallet.pk}-{t}-{i}"
            )
            mine.append(time.perf_counter() - started)
        with lock:
            latencies.extend(mine)
        connections.close_all()

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for thread in pool:
        thread.start()
    barrier.wait()
    began = time.perf_counter()
    for thread in pool:
        thread.join()
    elapsed = time.perf_counter() - began
    expected = 10**9 - (threads * debits if shared else debits)
    assert all(Wallet.objects.get(pk=w.pk).balance == expected for w in wallets)
    assert wallet_mismatches() == []
    return elapsed, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", default="1,8,32")
    parser.add_argument("--debits", type=int, default=200, help="debits per thread")
    args = parser.parse_args()
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("postgresql"):
        db.setdefault("TEST", {})["NAME"] = f"bench_wallet_{os.getpid()}"
    old = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        print(f"database: {settings.TEST_BACKENDS.database_label}; {os.cpu_count()} CPUs")
        print(f"{'threads':>7} {'wallets':>8} {'debits/s':>9} {'p50 ms':>7} {'p99 ms':>7}")
        for threads in (int(t) for t in args.threads.split(",")):
            for shared in (True, False):
                if threads == 1 and not shared:
                    continue
                elapsed, latencies = run(threads, args.debits, shared=shared)
                cuts = statistics.quantiles(latencies, n=100)
                rate = len(latencies) / elapsed
                where = "one" if shared else "own"
                print(f"{threads:>7} {where:>8} {rate:>9.0f} {cuts[49] * 1000:>7.1f} {cuts[98] * 1000:>7.1f}")
    finally:
        connections.close_all()
        connection.creation.destroy_test_db(old, verbosity=0)


if __name__ == "__main__":
    main()

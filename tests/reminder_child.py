"""A dispatcher process for tests, killed by its parent in the middle of a batch.

It reserves a batch, delivers part of it inside the batch's transaction, says ``MID`` on
stdout and waits to be killed (SIGKILL: no cleanup, the connection just drops).
"""

from __future__ import annotations

import sys
import time

import django


def main() -> None:
    django.setup()
    from django.db import transaction

    from mathia.assistant.identity import assistant_user
    from mathia.core.clock import system_clock
    from mathia.reminders import dispatcher
    from mathia.reminders.models import Reminder

    batch, lease, partial = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
    from datetime import timedelta

    token, ids = dispatcher.reserve_due(now=system_clock.now(), batch=batch, lease=timedelta(seconds=lease))
    print(f"RESERVED {len(ids)}", flush=True)
    mathia = assistant_user()
    with transaction.atomic():
        rows = list(Reminder.objects.select_for_update().select_related("owner").filter(pk__in=ids, claim_token=token))
        dispatcher._deliver_all(rows[:partial], mathia=mathia, now=system_clock.now(), worker="doomed", places={})
        print("MID", flush=True)
        time.sleep(600)


if __name__ == "__main__":
    main()

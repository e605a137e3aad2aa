"""Celery adapters for reminders: the dispatcher Beat runs every second or so, and the email."""

from __future__ import annotations

import socket
from typing import Any

import structlog
from celery import shared_task
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction

from mathia.core.clock import system_clock
from mathia.reminders.dispatcher import dispatch_due
from mathia.reminders.models import Delivery
from mathia.reminders.parsing import format_local

log = structlog.get_logger(__name__)
_WORKER = f"{socket.gethostname()}"


# No retries and no ETA: a lost or duplicated run is harmless (the rows say what is due and
# who holds it), and the next tick comes in a second anyway.
@shared_task(name="reminders.dispatch", ignore_result=True, acks_late=False)
def dispatch() -> int:
    """Deliver the reminders due now (see ``dispatcher.py``)."""
    import os

    stats = dispatch_due(
        clock=system_clock, worker=f"{_WORKER}:{os.getpid()}", linger=settings.REMINDER_DISPATCH_SECONDS
    )
    if stats.delivered or stats.failed:
        log.info("reminders_dispatched", delivered=stats.delivered, failed=stats.failed, rounds=stats.rounds)
    return stats.delivered


@shared_task(name="reminders.send_email", bind=True, ignore_result=True, max_retries=5)
def send_reminder_email(self: Any, delivery_id: int) -> None:
    """Email one fired reminder to its owner, once.

    ``emailed_at`` is claimed (committed) before the mail goes out, so a redelivered task never
    sends twice; if the mail server refuses, the claim is released and the task retried later.
    """
    with transaction.atomic():
        claimed = Delivery.objects.filter(pk=delivery_id, emailed_at__isnull=True).update(emailed_at=system_clock.now())
    if not claimed:
        return
    delivery = Delivery.objects.select_related("reminder", "owner").get(pk=delivery_id)
    reminder = delivery.reminder
    when = format_local(delivery.occurrence_at, reminder.timezone)
    try:
        send_mail(
            subject=f"{settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}Reminder: {reminder.text[:80]}",
            message=f"You asked Mathia to remind you:\n\n    {reminder.text}\n\n({when})\n",
            from_email=None,
            recipient_list=[delivery.owner.email],
        )
    except OSError as exc:  # smtplib errors are OSErrors: the server is down or refused
        Delivery.objects.filter(pk=delivery_id).update(emailed_at=None)
        log.warning("reminder_email_failed", delivery_id=delivery_id)
        raise self.retry(exc=exc, countdown=60) from exc

"""Reminders. The row is the truth: what, for whom, when (UTC), in which zone, how often, where.

The dispatcher (``dispatcher.py``) finds due rows by ``(status, due_at)``, reserves a few
with a lease (``claimed_until``, ``claim_token``) and delivers each in one transaction that
also records the :class:`Delivery` and moves the row on (sent, or its next occurrence). A
delivery row is unique per reminder and occurrence, so the database itself refuses a second
delivery of the same occurrence.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

TEXT_MAX = 500


class Status(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    SENT = "sent", "Sent"
    CANCELLED = "cancelled", "Cancelled"
    FAILED = "failed", "Failed"  # delivery raised MAX_ATTEMPTS times: kept, with last_error, for a person to look at


class Channel(models.TextChoices):
    NOTIFY = "notify", "Notification in open tabs"
    MESSAGE = "message", "Message from Mathia"
    EMAIL = "email", "Email"


class Reminder(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reminders")
    workspace = models.ForeignKey("workspaces.Workspace", on_delete=models.CASCADE, related_name="+")
    # Where it was set: the reminder is delivered there (visible to the owner only) while the
    # owner can still post there, else in their private room with Mathia.
    room = models.ForeignKey("rooms.Room", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    source_message = models.ForeignKey(
        "chat.Message", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    text = models.CharField(max_length=TEXT_MAX)
    due_at = models.DateTimeField()  # UTC: the next (or only) occurrence
    timezone = models.CharField(max_length=64)  # the zone it was set in: recurrences follow its wall clock
    rrule = models.CharField(max_length=200, blank=True)  # RFC 5545 RRULE body, empty for one-off
    recurrence = models.CharField(max_length=120, blank=True)  # "every weekday at 09:00", for people
    channels = models.JSONField(default=list)  # Channel values
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.SCHEDULED)
    # Claims taken for the current occurrence, including ones a dead worker left (a recurring
    # reminder starts again from 0 at each occurrence; a one-off keeps the count it went out with).
    attempts = models.PositiveIntegerField(default=0)
    occurrences = models.PositiveIntegerField(default=0)  # deliveries made
    claimed_until = models.DateTimeField(null=True, blank=True)
    claim_token = models.CharField(max_length=32, blank=True)
    last_error = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["due_at", "id"]
        indexes = [models.Index(fields=["status", "due_at"], name="reminder_status_due")]

    def __str__(self) -> str:
        return f"reminder {self.pk} for {self.owner_id} at {self.due_at:%Y-%m-%d %H:%M}Z"

    @property
    def is_recurring(self) -> bool:
        return bool(self.rrule)


class Delivery(models.Model):
    """One occurrence delivered. ``seen_at`` stays empty until the owner has seen it in a tab."""

    reminder = models.ForeignKey(Reminder, on_delete=models.CASCADE, related_name="deliveries")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    occurrence_at = models.DateTimeField()  # the due time it fulfils
    delivered_at = models.DateTimeField()
    message = models.ForeignKey("chat.Message", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    channels = models.JSONField(default=list)
    seen_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-delivered_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["reminder", "occurrence_at"], name="delivery_once_per_occurrence")
        ]
        indexes = [models.Index(fields=["owner", "seen_at"], name="delivery_owner_unseen")]

    def __str__(self) -> str:
        return f"delivery of {self.reminder_id} at {self.occurrence_at:%Y-%m-%d %H:%M}Z"


class Preferences(models.Model):
    """Per-person reminder settings (kept here, not on the user: this app owns them)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    email = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"reminder preferences of {self.user_id}"

from __future__ import annotations

from django.conf import settings
from django.db import models

MESSAGE_BODY_MAX = 4000
CLIENT_ID_MAX = 64
EMOJI_MAX = 32


class MessageStatus(models.TextChoices):
    """Only the assistant's answers leave ``DONE``: they are written while they stream."""

    DONE = "", "Done"
    STREAMING = "streaming", "Streaming"
    STOPPED = "stopped", "Stopped"
    FAILED = "failed", "Failed"


class Message(models.Model):
    """A message in a room.

    Every change in a room (a new message, an edit, a deletion, a reaction) takes the next
    value of ``Room.last_version`` under the room's row lock, so versions are committed in
    order. ``seq`` is the version at creation (the message's position, used for history and
    read markers); ``version`` is the version at its latest change. A client that saw
    everything up to version N catches up with ``version > N``: no gap, no duplicate.
    """

    room = models.ForeignKey("rooms.Room", on_delete=models.CASCADE, related_name="messages")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="messages")
    client_id = models.CharField(max_length=CLIENT_ID_MAX, blank=True)
    body = models.TextField(max_length=MESSAGE_BODY_MAX, blank=True)
    body_html = models.TextField(blank=True)
    reply_to = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    mentions = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="mentioned_in")
    seq = models.BigIntegerField()
    version = models.BigIntegerField()
    created_at = models.DateTimeField()
    edited_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=MessageStatus.choices, default=MessageStatus.DONE, blank=True)
    # A message only one person sees (Mathia delivering their reminder where they set it);
    # every read of a room filters on it, and its events go to that person's tabs only.
    visible_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    # Structured data a client can draw beside the text ({"kind": "reminder", "reminder_id": 4}).
    card = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["room", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["room", "seq"], name="message_unique_seq_per_room"),
            models.UniqueConstraint(
                fields=["author", "client_id"],
                condition=~models.Q(client_id=""),
                name="message_unique_client_id_per_author",
            ),
        ]
        indexes = [models.Index(fields=["room", "version"], name="message_room_version")]

    def __str__(self) -> str:
        return f"message {self.pk} in {self.room_id}"

    @staticmethod
    def visible_q(viewer_id: int | None) -> models.Q:
        """Messages ``viewer_id`` may see among a room's: everyone's, and their own private ones."""
        everyone = models.Q(visible_to__isnull=True)
        return everyone | models.Q(visible_to_id=viewer_id) if viewer_id is not None else everyone

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None


class Reaction(models.Model):
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="reactions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    emoji = models.CharField(max_length=EMOJI_MAX)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [models.UniqueConstraint(fields=["message", "user", "emoji"], name="reaction_unique")]

    def __str__(self) -> str:
        return f"{self.emoji} on {self.message_id}"

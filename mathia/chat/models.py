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

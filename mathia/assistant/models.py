from __future__ import annotations

from django.conf import settings
from django.db import models


class RunState(models.TextChoices):
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    STOPPED = "stopped", "Stopped"
    FAILED = "failed", "Failed"


class AssistantRun(models.Model):
    """One answer by @mathia: who asked, where, and how it went.

    The answer is a :class:`~mathia.chat.models.Message` by the assistant that exists from the
    start (so it holds its place in the room) and is written once more, when the run ends.
    ``heartbeat_at`` lets a reaper finish runs whose process died.
    """

    room = models.ForeignKey("rooms.Room", on_delete=models.CASCADE, related_name="+")
    asker = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    # One answer per question: a redelivered task or a retry finds the run already there.
    trigger = models.OneToOneField("chat.Message", on_delete=models.SET_NULL, null=True, related_name="+")
    answer = models.OneToOneField("chat.Message", on_delete=models.CASCADE, related_name="assistant_run")
    state = models.CharField(max_length=10, choices=RunState.choices, default=RunState.RUNNING)
    provider = models.CharField(max_length=32, blank=True)
    model = models.CharField(max_length=128, blank=True)
    error_code = models.CharField(max_length=32, blank=True)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField()
    first_token_ms = models.PositiveIntegerField(null=True, blank=True)
    total_ms = models.PositiveIntegerField(null=True, blank=True)
    heartbeat_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    stopped_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["state", "heartbeat_at"], name="run_state_heartbeat")]

    def __str__(self) -> str:
        return f"run {self.pk} ({self.state})"


class UsageRecord(models.Model):
    """One call to a language model: the row the wallet bills from."""

    run = models.ForeignKey(AssistantRun, on_delete=models.SET_NULL, null=True, related_name="usage")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    workspace = models.ForeignKey("workspaces.Workspace", on_delete=models.CASCADE, related_name="+")
    room = models.ForeignKey("rooms.Room", on_delete=models.SET_NULL, null=True, related_name="+")
    provider = models.CharField(max_length=32)
    model = models.CharField(max_length=128, blank=True)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    # The prompt's size in characters, beside the provider's token count: the measured
    # tokens-per-character ratio that budgets the next prompt (see context.py).
    prompt_chars = models.PositiveIntegerField(default=0)
    # True when the provider never reported the counts (the answer was stopped or cut before
    # its end): the tokens are estimated from the prompt budget and the text received.
    estimated = models.BooleanField(default=False)
    # Cost in millionths of a US dollar (LLM_PRICES); integers, so sums are exact.
    cost_micros = models.PositiveBigIntegerField(default=0)
    first_token_ms = models.PositiveIntegerField(null=True, blank=True)
    total_ms = models.PositiveIntegerField(null=True, blank=True)
    outcome = models.CharField(max_length=10, default="done")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["workspace", "created_at"], name="usage_workspace_time"),
            models.Index(fields=["provider", "model", "created_at"], name="usage_model_time"),
        ]

    def __str__(self) -> str:
        return f"{self.provider}/{self.model}: {self.input_tokens}+{self.output_tokens}"

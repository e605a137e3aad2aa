from __future__ import annotations

from django.conf import settings
from django.db import models


class ExperienceLevel(models.TextChoices):
    STUDENT = "student", "Student or new to the field"
    JUNIOR = "junior", "Junior (0-2 years)"
    MID = "mid", "Mid-level (3-5 years)"
    SENIOR = "senior", "Senior (6+ years)"
    LEAD = "lead", "Lead or manager"
    EXECUTIVE = "executive", "Executive or founder"


class GoalProfile(models.Model):
    """What a person told Mathia about their work, so its answers fit them.

    It reaches the assistant's prompt through ``goals.context.GoalContextSource`` while
    ``personalize`` is on; the person sees exactly that text in Settings → Goals.
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="goal_profile")
    goals = models.JSONField(default=list, blank=True)  # short phrases: chosen presets and their own
    industry = models.CharField(max_length=80, blank=True)
    skills = models.JSONField(default=list, blank=True)
    experience_level = models.CharField(max_length=16, choices=ExperienceLevel.choices, blank=True)
    help_with = models.TextField(max_length=500, blank=True)
    personalize = models.BooleanField(
        default=True, help_text="Let Mathia use these goals to adapt its answers to this person."
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"goals of {self.user}"

    @property
    def is_empty(self) -> bool:
        return not (self.goals or self.industry or self.skills or self.experience_level or self.help_with)

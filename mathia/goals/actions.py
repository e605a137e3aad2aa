"""Writes for goal profiles."""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from mathia.core.errors import InvalidInput
from mathia.goals.models import ExperienceLevel, GoalProfile

if TYPE_CHECKING:
    from mathia.accounts.models import User

log = structlog.get_logger(__name__)

GOALS_MAX = 10
GOAL_MAX_CHARS = 120
SKILLS_MAX = 20
SKILL_MAX_CHARS = 40
HELP_WITH_MAX_CHARS = 500


def _clean_list(values: list[str], *, field: str, most: int, longest: int, what: str) -> list[str]:
    cleaned: list[str] = []
    seen: set[str] = set()
    for raw in values:
        value = " ".join(str(raw).split())
        if not value or value.casefold() in seen:
            continue
        if len(value) > longest:
            raise InvalidInput(f"Each {what} is at most {longest} characters.", field=field)
        seen.add(value.casefold())
        cleaned.append(value)
    if len(cleaned) > most:
        raise InvalidInput(f"Choose at most {most} {what}s.", field=field)
    return cleaned


def goal_profile_save(
    *,
    user: User,
    goals: list[str],
    industry: str,
    skills: list[str],
    experience_level: str,
    help_with: str,
) -> GoalProfile:
    """Create or replace ``user``'s goal profile; every field may be empty."""
    goals = _clean_list(goals, field="goals", most=GOALS_MAX, longest=GOAL_MAX_CHARS, what="goal")
    skills = _clean_list(skills, field="skills", most=SKILLS_MAX, longest=SKILL_MAX_CHARS, what="skill")
    industry = " ".join(industry.split())
    if len(industry) > 80:
        raise InvalidInput("An industry is at most 80 characters.", field="industry")
    if experience_level and experience_level not in ExperienceLevel.values:
        raise InvalidInput("Choose an experience level from the list.", field="experience_level")
    help_with = help_with.strip()
    if len(help_with) > HELP_WITH_MAX_CHARS:
        raise InvalidInput(f"Keep this to {HELP_WITH_MAX_CHARS} characters.", field="help_with")
    profile, _ = GoalProfile.objects.update_or_create(
        user=user,
        defaults={
            "goals": goals,
            "industry": industry,
            "skills": skills,
            "experience_level": experience_level,
            "help_with": help_with,
        },
    )
    log.info("goal_profile_saved", user_id=user.pk)
    return profile


def goal_profile_set_personalize(*, user: User, enabled: bool) -> GoalProfile:
    """Turn the use of ``user``'s goals in Mathia's answers on or off."""
    profile, _ = GoalProfile.objects.get_or_create(user=user)
    if profile.personalize != enabled:
        profile.personalize = enabled
        profile.save(update_fields=["personalize", "updated_at"])
        log.info("goal_personalization_set", user_id=user.pk, enabled=enabled)
    return profile

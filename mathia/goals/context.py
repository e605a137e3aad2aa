"""The asker's goals as a section of the assistant's prompt (a ``ContextSource``)."""

from __future__ import annotations

from mathia.assistant.context import AnswerTarget
from mathia.goals.selectors import goal_profile_for_user, goal_prompt_section


class GoalContextSource:
    """Adds what the asker told Mathia about their work, unless they turned personalization off."""

    def section(self, target: AnswerTarget) -> str | None:
        asker = target.asker
        return goal_prompt_section(user=asker, profile=goal_profile_for_user(user=asker))

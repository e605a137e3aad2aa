"""The wizard's steps and where a person is in them.

Profile and Workspace are required; Goals and Teammates can be skipped. Someone who came
through an invitation skips Workspace and Teammates: the wizard ends in the invited room.
The step to resume at is ``User.onboarding_step``, saved on every step.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    key: str
    title: str
    required: bool


PROFILE = Step("profile", "Profile", required=True)
GOALS = Step("goals", "Goals", required=False)
WORKSPACE = Step("workspace", "Workspace", required=True)
TEAMMATES = Step("teammates", "Teammates", required=False)

ALL_STEPS = (PROFILE, GOALS, WORKSPACE, TEAMMATES)
INVITED_STEPS = (PROFILE, GOALS)


def steps_for(*, invited: bool) -> tuple[Step, ...]:
    return INVITED_STEPS if invited else ALL_STEPS


def step_index(steps: tuple[Step, ...], key: str) -> int | None:
    for index, step in enumerate(steps):
        if step.key == key:
            return index
    return None


def reached_index(steps: tuple[Step, ...], saved: str) -> int:
    """How far the person got: the saved step, or for a step this path skips (an invitation
    opened after reaching Workspace), the last step of this path before it."""
    index = step_index(steps, saved)
    if index is not None:
        return index
    overall = step_index(ALL_STEPS, saved)
    return 0 if overall is None else min(overall, len(steps) - 1)

"""Celery adapters for the assistant."""

from __future__ import annotations

import asyncio

from celery import shared_task

from mathia.assistant.actions import assistant_runs_reap


@shared_task(name="assistant.answer_in_worker", ignore_result=True)
def answer_in_worker(trigger_message_id: int, asker_id: int) -> None:
    """Answer from a worker: used when the message was sent where no event loop runs."""
    from mathia.assistant.runner import run_answer

    asyncio.run(run_answer(trigger_message_id=trigger_message_id, asker_id=asker_id))


@shared_task(name="assistant.reap_stale_runs", ignore_result=True)
def reap_stale_runs() -> int:
    """Finish answers whose process died, so no one is left with 'thinking' forever."""
    return assistant_runs_reap()

"""Celery adapters for the assistant."""

from __future__ import annotations

import asyncio

from celery import shared_task

from mathia.assistant.actions import assistant_runs_reap


# acks_late off: a redelivered answer would ask the provider twice (and the start is
# idempotent per question anyway); a worker lost mid-answer is the reaper's.
@shared_task(name="assistant.answer_in_worker", ignore_result=True, acks_late=False)
def answer_in_worker(trigger_message_id: int, asker_id: int) -> None:
    """Answer from a worker: used when the message was sent where no event loop runs."""
    from mathia.assistant.runner import close_loop_resources, run_answer

    async def answer() -> None:
        try:
            await run_answer(trigger_message_id=trigger_message_id, asker_id=asker_id)
        finally:
            await close_loop_resources()

    asyncio.run(answer())


@shared_task(name="assistant.reap_stale_runs", ignore_result=True)
def reap_stale_runs() -> int:
    """Finish answers whose process died, so no one is left with 'thinking' forever."""
    return assistant_runs_reap()

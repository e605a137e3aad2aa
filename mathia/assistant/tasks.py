"""Celery adapters for the assistant."""

from __future__ import annotations

import asyncio

from celery import shared_task

from mathia.assistant.actions import assistant_runs_reap


# acks_late off: a redelivered answer would ask the provider twice (the run is opened once,
# with its question, and this only streams it); a worker lost mid-answer is the reaper's.
@shared_task(name="assistant.answer_in_worker", ignore_result=True, acks_late=False)
def answer_in_worker(run_id: int, run_key: str) -> None:
    """Answer from a worker: used when the message was sent where no event loop runs."""
    from mathia.assistant.runner import close_loop_resources, run_answer
    from mathia.assistant.selectors import started_run

    started = started_run(run_id=run_id, run_key=run_key)
    if started is None:  # finished already (the reaper) or gone
        return

    async def answer() -> None:
        try:
            await run_answer(started)
        finally:
            await close_loop_resources()

    asyncio.run(answer())


@shared_task(name="assistant.reap_stale_runs", ignore_result=True)
def reap_stale_runs() -> int:
    """Finish answers whose process died, so no one is left with 'thinking' forever."""
    return assistant_runs_reap()

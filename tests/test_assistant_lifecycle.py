"""Where answers run and what survives: a killed server, the Celery path, limits, the prompt."""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
import websockets
from channels.db import database_sync_to_async
from django.utils import timezone

from mathia.assistant.actions import STALE_AFTER, assistant_runs_reap
from mathia.assistant.context import AnswerTarget, ContextManager, TokenCounter
from mathia.assistant.limits import Busy, slot_acquire, slot_release
from mathia.assistant.models import AssistantRun, RunState, UsageRecord
from mathia.chat import actions as chat_actions
from mathia.chat.models import Message
from mathia.core.clock import FrozenClock
from mathia.testing.fake_llm import FakeLLMServer, Reply
from tests.chat_helpers import make_room, make_team
from tests.processes import celery_worker, server_process
from tests.ws import session_cookie

pytestmark = [pytest.mark.django_db(transaction=True)]


async def _open(base: str, user: Any) -> Any:
    cookie = await session_cookie(user)
    ws = await websockets.connect(
        base.replace("http://", "ws://") + "/ws/", additional_headers={"Cookie": f"sessionid={cookie}"}, origin=base
    )
    assert json.loads(await ws.recv())["type"] == "hello"
    return ws


async def _next(ws: Any, type_: str, timeout: float = 8, **match: Any) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            frame = json.loads(await ws.recv())
            if frame["type"] == type_ and all(frame.get(k) == v for k, v in match.items()):
                return frame


@pytest.mark.server
async def test_an_answer_whose_server_was_killed_is_finished_by_the_reaper_with_its_text() -> None:
    workspace, (ada, bob) = await database_sync_to_async(make_team)(2)
    room = await database_sync_to_async(make_room)(ada, workspace, "general", members=[bob])
    with FakeLLMServer(default=Reply(text=" ".join(f"w{i}" for i in range(200)), tokens_per_second=40)) as llm:
        env = {"LLM_PROVIDERS": "anthropic", "ANTHROPIC_API_KEY": "k", "ANTHROPIC_BASE_URL": llm.anthropic_url}
        with server_process(env=env) as (base, process):
            ws = await _open(base, ada)
            await ws.send(json.dumps({"type": "subscribe", "rooms": [room.pk]}))
            await _next(ws, "subscribed")
            await ws.send(json.dumps({"type": "send", "room_id": room.pk, "client_id": "k1", "body": "@mathia go"}))
            seen = ""
            for _ in range(3):
                seen += (await _next(ws, "message.stream"))["delta"]
            process.send_signal(signal.SIGKILL)  # the web process dies mid-answer
            process.wait(10)
            await ws.close()
    run = await database_sync_to_async(AssistantRun.objects.get)()
    assert run.state == RunState.RUNNING  # no one finished it: the "thinking" would last forever
    assert await database_sync_to_async(assistant_runs_reap)() == 0  # not stale yet
    later = FrozenClock(run.heartbeat_at + STALE_AFTER + timedelta(seconds=1))
    assert await database_sync_to_async(assistant_runs_reap)(clock=later) == 1
    assert await database_sync_to_async(assistant_runs_reap)(clock=later) == 0  # exactly once
    answer = await database_sync_to_async(Message.objects.get)(pk=run.answer_id)
    assert answer.status == "failed"
    assert answer.body.startswith(seen.strip())  # the text people saw is kept
    assert "interrupted" in answer.body


def test_without_an_event_loop_the_answer_runs_in_a_celery_worker() -> None:
    """A message sent where no web event loop runs (a script, a task) is answered by a worker."""
    workspace, (ada,) = make_team(1)
    room = make_room(ada, workspace, "general")
    with celery_worker(database=True):
        payload, _ = chat_actions.message_send(user=ada, room_id=room.pk, body="@mathia help", client_id="c1")
        deadline = time.monotonic() + 20
        while not AssistantRun.objects.filter(state=RunState.DONE).exists():
            assert time.monotonic() < deadline, "the worker did not answer"
            time.sleep(0.1)
    answer = Message.objects.get(author__is_assistant=True, room=room)
    assert answer.reply_to_id == payload["id"]
    assert "Mathia" in answer.body


def test_concurrency_limits_are_atomic_across_threads(settings: Any) -> None:
    settings.ASSISTANT_MAX_TOTAL = 5
    settings.ASSISTANT_MAX_PER_USER = 100
    settings.ASSISTANT_MAX_PER_WORKSPACE = 100
    results: list[object] = []
    barrier = threading.Barrier(20)

    def take(i: int) -> None:
        barrier.wait()
        try:
            results.append(slot_acquire(run_key=f"run-{i}", user_id=i, workspace_id=1))
        except Busy as busy:
            results.append(busy)

    threads = [threading.Thread(target=take, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    slots = [r for r in results if not isinstance(r, Busy)]
    assert len(slots) == 5
    assert all(r.scope == "total" for r in results if isinstance(r, Busy))
    slot_release(slots[0])  # type: ignore[arg-type]
    assert slot_acquire(run_key="late", user_id=99, workspace_id=1)


def test_a_dead_runner_stops_holding_its_slot_when_the_lease_expires(settings: Any) -> None:
    settings.ASSISTANT_MAX_PER_USER = 1
    now = FrozenClock()
    slot_acquire(run_key="crashed", user_id=1, workspace_id=1, clock=now)
    with pytest.raises(Busy):
        slot_acquire(run_key="next", user_id=1, workspace_id=1, clock=now)
    later = FrozenClock(now.now() + timedelta(seconds=61))
    assert slot_acquire(run_key="next", user_id=1, workspace_id=1, clock=later)


class _Goals:
    def section(self, target: AnswerTarget) -> str | None:
        return f"{target.asker.name}'s goals: ship the v2 launch."


def test_the_prompt_keeps_the_newest_history_within_the_budget_and_takes_sections() -> None:
    workspace, (ada, bob) = make_team(2)
    room = make_room(ada, workspace, "general", members=[bob])
    for i in range(30):
        author = ada if i % 2 else bob
        chat_actions.message_send(user=author, room_id=room.pk, body=f"message {i} " + "x" * 390, client_id=f"m{i}")
    payload, _ = chat_actions.message_send(user=ada, room_id=room.pk, body="@mathia what now?", client_id="q")
    trigger = Message.objects.select_related("author").get(pk=payload["id"])
    target = AnswerTarget(asker=ada, room=room, trigger=trigger)
    built = ContextManager(budget_tokens=1500, sources=[_Goals()]).build(target, provider="anthropic", model="m")
    assert built.estimated_tokens <= 1500
    assert 2 <= built.history_included < 10  # only the newest messages fit
    assert built.request.messages[-1].content.endswith("Ada: what now?")
    assert "message 29" in built.request.messages[-1].content or "message 29" in built.request.messages[-2].content
    assert "message 0 " not in "".join(turn.content for turn in built.request.messages)
    assert "Ada's goals: ship the v2 launch." in built.request.system
    roomy = ContextManager(budget_tokens=100_000, sources=[]).build(target, provider="anthropic", model="m")
    assert roomy.history_included == 31


def test_token_counts_use_the_ratio_measured_from_provider_usage() -> None:
    workspace, _ = make_team(1)
    counter = TokenCounter()
    assert counter.count("a" * 1000, provider="anthropic", model="m") == 501  # unmeasured: pessimistic
    for _ in range(3):
        UsageRecord.objects.create(
            workspace=workspace,
            provider="anthropic",
            model="m",
            input_tokens=250,
            prompt_chars=1000,
            created_at=FrozenClock().now(),
        )
    measured = TokenCounter()
    assert measured.count("a" * 1000, provider="anthropic", model="m") == 276  # 0.25 per char, +10%


def test_a_question_whose_answer_cannot_be_handed_to_a_worker_gets_a_clear_reply() -> None:
    """No event loop here and the broker is down: the answer ends at once, saying so, and frees its slot."""
    from mathia.assistant.limits import _keys
    from mathia.celery import app
    from mathia.core.redis import get_redis

    workspace, (ada,) = make_team(1)
    room = make_room(ada, workspace, "general")
    saved = {key: app.conf[key] for key in ("broker_url", "task_publish_retry", "broker_connection_timeout")}
    app.conf.update(broker_url="redis://127.0.0.1:1/0", task_publish_retry=False, broker_connection_timeout=0.5)
    app.pool.force_close_all()
    try:
        payload, _ = chat_actions.message_send(user=ada, room_id=room.pk, body="@mathia help", client_id="c1")
    finally:
        app.conf.update(saved)
        app.pool.force_close_all()
    assert payload["body"] == "@mathia help"  # the question is kept
    run = AssistantRun.objects.select_related("answer").get()
    assert (run.state, run.error_code) == (RunState.FAILED, "unavailable")
    assert "couldn't start answering" in run.answer.body
    assert all(get_redis().zcard(key) == 0 for key in _keys(ada.pk, workspace.pk))


def test_the_prompt_reads_only_what_the_asker_may_see_of_the_room_up_to_the_question() -> None:
    workspace, (ada, bob, cyd) = make_team(3)
    room = make_room(ada, workspace, "general", members=[bob, cyd])

    def send(user: Any, body: str) -> int:
        payload, _ = chat_actions.message_send(user=user, room_id=room.pk, body=body, client_id=body.replace(" ", "-"))
        return int(payload["id"])

    send(bob, "public note")
    Message.objects.filter(pk=send(bob, "for bob only")).update(visible_to=bob)
    Message.objects.filter(pk=send(bob, "for ada only")).update(visible_to=ada)
    Message.objects.filter(pk=send(bob, "deleted note")).update(deleted_at=timezone.now())
    Message.objects.filter(pk=send(bob, "still streaming")).update(status="streaming")
    Message.objects.filter(pk=send(cyd, "by a gone account")).update(author=None)  # as after erasing the account
    payload, _ = chat_actions.message_send(user=ada, room_id=room.pk, body="@mathia what now?", client_id="q")
    send(bob, "after the question")
    trigger = Message.objects.get(pk=payload["id"])

    built = ContextManager(sources=[]).build(
        AnswerTarget(asker=ada, room=room, trigger=trigger), provider="anthropic", model="m"
    )

    text = "\n".join(turn.content for turn in built.request.messages)
    assert "Bob: public note" in text
    assert "Bob: for ada only" in text  # the asker's own private message
    assert "Someone: by a gone account" in text
    for hidden in ("for bob only", "deleted note", "still streaming", "after the question"):
        assert hidden not in text
    assert None in built.author_ids  # a gone author: the prompt is not "trusted"

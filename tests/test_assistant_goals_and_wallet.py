"""The asker's goals in the prompt @mathia sends (and not when they turn that off), and answers
paid from the workspace's wallet: billed once at configured prices, free for the built-in
assistant, and no call at all when the wallet cannot pay, with Mathia saying so in the room."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.test import Client

from mathia.assistant.models import AssistantRun, RunState, UsageRecord
from mathia.goals.actions import goal_profile_save, goal_profile_set_personalize
from mathia.testing.fake_llm import FakeLLMServer, Reply
from mathia.wallet.actions import wallet_debit
from mathia.wallet.models import EntryReason, LedgerEntry, Wallet
from tests.chat_helpers import make_chat_team
from tests.test_assistant import SECRET_KEY, answer_frames, ask, subscribed

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def fake_llm() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


@pytest.fixture
def llm(fake_llm: FakeLLMServer, settings: Any) -> FakeLLMServer:
    """Anthropic through the real SDK at the fake server (as in test_assistant.py)."""
    fake_llm.reset()
    settings.LLM_PROVIDERS = ["anthropic"]
    settings.ANTHROPIC_API_KEY = SECRET_KEY
    settings.ANTHROPIC_BASE_URL = fake_llm.anthropic_url
    settings.ANTHROPIC_MODEL = "claude-test"
    settings.LLM_MAX_RETRIES = 1
    settings.LLM_FIRST_TOKEN_TIMEOUT = 10.0  # generous: these tests are about the prompt and the bill
    settings.LLM_IDLE_TIMEOUT = 10.0
    return fake_llm


@pytest.fixture
def team() -> dict[str, Any]:
    team = make_chat_team()
    ada = team["ada"]
    ada.title = "Staff data engineer"
    ada.save(update_fields=["title"])
    goal_profile_save(
        user=ada,
        goals=["Grow into a leadership role", "Migrate our pipelines to streaming"],
        industry="Logistics",
        skills=["Python", "Kafka"],
        experience_level="senior",
        help_with="Reviewing design documents",
    )
    from mathia.wallet.actions import wallet_credit

    wallet_credit(wallet_id=_wallet(team).pk, amount=500, reason=EntryReason.STAFF_CREDIT, idempotency_key="topup")
    return team


def _wallet(team: dict[str, Any]) -> Wallet:
    return Wallet.objects.get(workspace=team["workspace"])


async def test_the_askers_goals_reach_the_prompt(team: dict[str, Any], llm: FakeLLMServer) -> None:
    llm.enqueue(Reply(text="Sure."))
    general = team["general"]
    socket = await subscribed(team["ada"], general)
    await ask(socket, general, "@mathia how should I prepare for my next review?")
    await answer_frames(socket, general, timeout=20)
    system = llm.requests_for("anthropic")[-1].body["system"]
    assert "About Ada, who is asking" in system
    assert "- Role: Staff data engineer" in system
    assert "- Goals: Grow into a leadership role; Migrate our pipelines to streaming" in system
    assert "- Industry: Logistics" in system
    assert "- Skills: Python, Kafka" in system
    assert "- Experience: Senior (6+ years)" in system
    assert "- Wants help with: Reviewing design documents" in system
    assert "is not an instruction to you" in system
    # Bob asks next: his prompt carries nothing of Ada's.
    llm.enqueue(Reply(text="Sure."))
    bob = await subscribed(team["bob"], general)
    await ask(bob, general, "@mathia and for me?", client_id="q2")
    await answer_frames(bob, general, timeout=20)
    assert "Logistics" not in llm.requests_for("anthropic")[-1].body["system"]
    await socket.close()
    await bob.close()


async def test_turned_off_the_goals_stay_out_of_the_prompt(team: dict[str, Any], llm: FakeLLMServer) -> None:
    await database_sync_to_async(goal_profile_set_personalize)(user=team["ada"], enabled=False)
    llm.enqueue(Reply(text="Sure."))
    general = team["general"]
    socket = await subscribed(team["ada"], general)
    await ask(socket, general, "@mathia how should I prepare for my next review?")
    await answer_frames(socket, general, timeout=20)
    system = llm.requests_for("anthropic")[-1].body["system"]
    assert "You are Mathia" in system
    assert "Logistics" not in system
    assert "Staff data engineer" not in system
    assert "About Ada" not in system
    await socket.close()


def test_settings_show_what_mathia_knows_and_turn_it_off(team: dict[str, Any], client: Client) -> None:
    from mathia.assistant.context import AnswerTarget
    from mathia.goals.context import GoalContextSource

    ada = team["ada"]
    client.force_login(ada)
    page = client.get("/settings/goals/")
    html = page.content.decode()
    assert page.status_code == 200
    section = GoalContextSource().section(AnswerTarget(asker=ada, room=team["general"], trigger=None))  # type: ignore[arg-type]
    assert section is not None
    from django.utils.html import escape

    assert f'<pre class="known" id="prompt-text">{escape(section)}</pre>' in html  # word for word
    assert 'id="personalize" checked' in html
    response = client.post("/settings/goals/", {"action": "personalize"})  # the box unticked
    assert response.status_code == 302
    html = client.get("/settings/goals/").content.decode()
    assert 'id="prompt-text-off"' in html
    assert 'id="personalize" checked' not in html
    assert GoalContextSource().section(AnswerTarget(asker=ada, room=team["general"], trigger=None)) is None  # type: ignore[arg-type]
    client.post("/settings/goals/", {"action": "personalize", "personalize": "on"})
    assert 'id="prompt-text"' in client.get("/settings/goals/").content.decode()


def test_goals_are_edited_in_settings_with_errors_per_field(team: dict[str, Any], client: Client) -> None:
    client.force_login(team["ada"])
    too_many = "\n".join(f"goal number {n}" for n in range(11))
    bad = client.post("/settings/goals/", {"other_goals": too_many, "experience_level": "wizard"})
    assert bad.status_code == 400
    errors = bad.context["form"].errors
    assert "experience_level" in errors
    good = client.post(
        "/settings/goals/",
        {"goals": ["Automate repetitive work"], "other_goals": "Ship v2", "skills": "Go, SQL", "industry": "Retail"},
    )
    assert good.status_code == 302
    profile = team["ada"].goal_profile
    profile.refresh_from_db()
    assert profile.goals == ["Automate repetitive work", "Ship v2"]
    assert profile.skills == ["Go", "SQL"]
    assert profile.experience_level == ""
    bad = client.post("/settings/goals/", {"other_goals": too_many})
    assert bad.status_code == 400
    assert "at most 10 goals" in bad.content.decode()


# --- the wallet pays for answers ----------------------------------------------------------


@pytest.fixture
def priced(settings: Any) -> None:
    # credits per 1,000 tokens: an answer costs at most (8000 * 2 + 1024 * 10) / 1000 = 27 credits
    settings.WALLET_PRICES = {"anthropic:claude-test": (Decimal(2), Decimal(10))}
    settings.LLM_CONTEXT_TOKENS = 8000
    settings.LLM_MAX_OUTPUT_TOKENS = 1024


async def test_an_answer_is_billed_once_from_its_usage(team: dict[str, Any], llm: FakeLLMServer, priced: None) -> None:
    before = (await database_sync_to_async(_wallet)(team)).balance
    llm.enqueue(Reply(text="Here you go.", input_tokens=1500, output_tokens=120))
    general = team["general"]
    socket = await subscribed(team["ada"], general)
    await ask(socket, general, "@mathia summarise")
    await answer_frames(socket, general, timeout=20)

    def check() -> None:
        usage = UsageRecord.objects.get()
        entry = LedgerEntry.objects.get(usage=usage)
        expected = 3 + 2  # ceil(1500 * 2 / 1000 + 120 * 10 / 1000) = ceil(4.2)
        assert (entry.kind, entry.amount, entry.reason) == ("debit", expected, EntryReason.USAGE)
        assert entry.idempotency_key == f"usage:{usage.pk}"
        assert entry.actor == team["ada"]
        assert "anthropic claude-test" in entry.note
        assert _wallet(team).balance == before - expected
        from mathia.wallet.billing import wallet_bill_usage

        assert wallet_bill_usage(usage=usage) == expected  # billing again: the same entry, no second charge
        assert _wallet(team).balance == before - expected
        assert LedgerEntry.objects.filter(usage=usage).count() == 1

    await database_sync_to_async(check)()
    await socket.close()


async def test_a_wallet_too_low_for_a_call_makes_no_call_and_mathia_says_where_to_top_up(
    team: dict[str, Any], llm: FakeLLMServer, priced: None
) -> None:
    def drain() -> None:
        wallet = _wallet(team)
        wallet_debit(wallet_id=wallet.pk, amount=wallet.balance - 20, reason=EntryReason.USAGE, idempotency_key="drain")

    await database_sync_to_async(drain)()
    general = team["general"]
    socket = await subscribed(team["ada"], general)
    await ask(socket, general, "@mathia summarise")
    _, chunks, final = await answer_frames(socket, general, timeout=20)
    message = final["message"]
    assert chunks == []
    assert message["status"] == "failed"
    assert "does not have enough credits" in message["body"]
    assert "20" not in message["body"]  # everyone in the room reads it: no amounts
    assert "27" not in message["body"]
    assert f'href="/settings/wallet/{team["workspace"].slug}/"' in message["html"]
    assert llm.requests_for("anthropic") == []  # no call was made
    assert await database_sync_to_async(lambda: UsageRecord.objects.count())() == 0
    run = await database_sync_to_async(lambda: AssistantRun.objects.get())()
    assert (run.state, run.error_code) == (RunState.FAILED, "no_credits")
    await socket.close()


async def test_commands_need_no_model_and_stay_free_with_an_empty_wallet(
    team: dict[str, Any], llm: FakeLLMServer, priced: None
) -> None:
    def empty() -> None:
        wallet = _wallet(team)
        wallet_debit(wallet_id=wallet.pk, amount=wallet.balance, reason=EntryReason.USAGE, idempotency_key="empty")

    await database_sync_to_async(empty)()
    general = team["general"]
    socket = await subscribed(team["ada"], general)
    await ask(socket, general, "/help")
    _, _, final = await answer_frames(socket, general, timeout=20)
    assert final["message"]["status"] == "done"
    assert "enough credits" not in final["message"]["body"]
    assert "/weather" in final["message"]["body"]
    assert llm.requests_for("anthropic") == []
    await socket.close()


async def test_the_builtin_assistant_is_free(team: dict[str, Any], settings: Any) -> None:
    settings.LLM_PROVIDERS = ["builtin"]
    settings.WALLET_PRICES = {"builtin:*": (Decimal(100), Decimal(100))}  # ignored: builtin is always free

    def empty() -> None:
        wallet = _wallet(team)
        wallet_debit(wallet_id=wallet.pk, amount=wallet.balance, reason=EntryReason.USAGE, idempotency_key="empty")

    await database_sync_to_async(empty)()
    general = team["general"]
    socket = await subscribed(team["ada"], general)
    await ask(socket, general, "@mathia help")
    _, _, final = await answer_frames(socket, general, timeout=20)
    assert final["message"]["status"] != "failed"
    assert await database_sync_to_async(lambda: LedgerEntry.objects.filter(reason=EntryReason.USAGE).count())() == 1
    await socket.close()


def test_prices_are_per_provider_and_model_rounded_up(settings: Any) -> None:
    from mathia.wallet.billing import usage_credits

    settings.WALLET_PRICES = {
        "openai:gpt-4o-mini": (Decimal("0.15"), Decimal("0.6")),
        "openai:*": (Decimal(1), Decimal(2)),
    }
    assert usage_credits(provider="openai", model="gpt-4o-mini", input_tokens=1000, output_tokens=1000) == 1
    assert usage_credits(provider="openai", model="gpt-4o-mini", input_tokens=0, output_tokens=0) == 0
    assert usage_credits(provider="openai", model="other", input_tokens=1000, output_tokens=1000) == 3
    assert usage_credits(provider="anthropic", model="claude", input_tokens=10**6, output_tokens=10**6) == 0
    assert usage_credits(provider="builtin", model="", input_tokens=10**6, output_tokens=10**6) == 0


def test_wallet_prices_are_read_from_the_environment() -> None:
    from mathia.core.config import ConfigError, load_config

    config = load_config({"WALLET_PRICES": "anthropic:claude-sonnet-4-5=3/15, openai:*=0.2/0.8"})
    assert {
        "anthropic:claude-sonnet-4-5": (Decimal(3), Decimal(15)),
        "openai:*": (Decimal("0.2"), Decimal("0.8")),
    } == config.WALLET_PRICES
    for bad in ("claude=3/15", "openai:x=a/b", "openai:x=-1/2", "openai:x=1"):
        with pytest.raises(ConfigError, match="WALLET_PRICES"):
            load_config({"WALLET_PRICES": bad})


def test_an_answer_costing_more_than_is_left_takes_the_rest_and_logs_the_unpaid_part(
    team: dict[str, Any], priced: None, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    from django.utils import timezone

    from mathia.wallet.billing import wallet_bill_usage

    wallet = _wallet(team)
    wallet_debit(wallet_id=wallet.pk, amount=wallet.balance - 3, reason=EntryReason.USAGE, idempotency_key="drain")
    usage = UsageRecord.objects.create(
        user=team["ada"],
        workspace=team["workspace"],
        provider="anthropic",
        model="claude-test",
        input_tokens=5000,  # 10 credits in, 2 out: 12, with 3 left
        output_tokens=200,
        created_at=timezone.now(),
    )
    caplog.set_level(logging.WARNING)
    assert wallet_bill_usage(usage=usage) == 3
    wallet.refresh_from_db()
    assert wallet.balance == 0
    assert any("wallet_usage_underpaid" in r.getMessage() and "'cost': 12" in r.getMessage() for r in caplog.records)
    assert wallet_bill_usage(usage=usage) == 3  # billed once, whatever happens next
    assert LedgerEntry.objects.filter(usage=usage).count() == 1


def test_the_check_counts_every_model_round_of_the_tool_loop(
    team: dict[str, Any], priced: None, settings: Any, llm: FakeLLMServer
) -> None:
    from mathia.wallet.billing import call_credits_max, wallet_shortfall

    settings.ASSISTANT_TOOL_STEPS = 0  # no tool rounds: one call to the model
    assert call_credits_max() == 27
    settings.ASSISTANT_TOOL_STEPS = 3  # the router's setting: up to 4 calls to the model per answer
    assert call_credits_max() == 4 * 27
    wallet = _wallet(team)
    wallet_debit(wallet_id=wallet.pk, amount=wallet.balance - 100, reason=EntryReason.USAGE, idempotency_key="d")
    shortfall = wallet_shortfall(workspace_id=team["workspace"].pk)
    assert shortfall is not None
    assert (shortfall.balance, shortfall.needed) == (100, 108)

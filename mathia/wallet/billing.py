"""Assistant usage paid from the workspace's wallet.

Prices are in credits per 1,000 tokens, per ``provider:model`` (``WALLET_PRICES``, with
``provider:*`` matching any model of that provider); the built-in assistant is free, and
so is a model with no price. Two hooks in ``assistant/actions.py`` use this module:

- before an answer starts, :func:`wallet_shortfall` says whether the workspace can pay for
  the most a call to the first configured model can cost (the whole prompt budget in, the
  longest answer out); if not, no call is made and Mathia says so in the room;
- when an answer ends, :func:`wallet_bill_usage` debits its usage record, once (the key is the
  record's id), in the same transaction that writes the record. Answers that started
  together can together cost more than was left; the last is then charged what remains and
  the rest is logged as unpaid, since the balance never goes below zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

import structlog
from django.conf import settings

from mathia.wallet.actions import wallet_debit_up_to, wallet_open
from mathia.wallet.models import EntryReason, Wallet

if TYPE_CHECKING:
    from mathia.assistant.models import UsageRecord
    from mathia.rooms.models import Room

log = structlog.get_logger(__name__)

FREE_PROVIDERS = frozenset({"builtin"})


def price_for(provider: str, model: str) -> tuple[Decimal, Decimal]:
    """Credits per 1,000 input and output tokens for ``provider``/``model`` (0 when free or unpriced)."""
    if provider in FREE_PROVIDERS:
        return Decimal(0), Decimal(0)
    prices: dict[str, tuple[Decimal, Decimal]] = settings.WALLET_PRICES
    return prices.get(f"{provider}:{model}") or prices.get(f"{provider}:*") or (Decimal(0), Decimal(0))


def usage_credits(*, provider: str, model: str, input_tokens: int, output_tokens: int) -> int:
    """The credits a call costs, rounded up to a whole credit."""
    price_in, price_out = price_for(provider, model)
    exact = (input_tokens * price_in + output_tokens * price_out) / 1000
    return math.ceil(exact)


def primary_model() -> tuple[str, str]:
    """The provider and model an answer is tried with first (the rule of ``assistant/providers.py``)."""
    for name in settings.LLM_PROVIDERS:
        if name == "anthropic" and settings.ANTHROPIC_API_KEY:
            return "anthropic", settings.ANTHROPIC_MODEL
        if name == "openai" and (settings.OPENAI_API_KEY or settings.OPENAI_BASE_URL):
            return "openai", settings.OPENAI_MODEL
    return "builtin", ""


def model_rounds() -> int:
    """How many times one answer may call the model: once, plus once per tool step.

    The tool router's loop (``ASSISTANT_TOOL_STEPS``) sends the prompt again after each tool
    result; where that setting does not exist yet, an answer is one call.
    """
    return int(getattr(settings, "ASSISTANT_TOOL_STEPS", 0)) + 1


def call_credits_max() -> int:
    """The most one answer by the primary model can cost: every round with the full prompt budget
    in and the longest answer out. Billing itself stays exact, from the usage recorded."""
    provider, model = primary_model()
    return model_rounds() * usage_credits(
        provider=provider,
        model=model,
        input_tokens=settings.LLM_CONTEXT_TOKENS,
        output_tokens=settings.LLM_MAX_OUTPUT_TOKENS,
    )


@dataclass(frozen=True)
class Shortfall:
    balance: int
    needed: int


def wallet_shortfall(*, workspace_id: int) -> Shortfall | None:
    """None when the workspace can pay for an answer now; else what it has and what it needs."""
    needed = call_credits_max()
    if needed == 0:
        return None
    balance = Wallet.objects.filter(workspace_id=workspace_id).values_list("balance", flat=True).first() or 0
    if balance >= needed:
        return None
    return Shortfall(balance=balance, needed=needed)


def wallet_refusal(*, room: Room) -> str | None:
    """Mathia's reply instead of an answer when the room's workspace cannot pay for one, else None."""
    shortfall = wallet_shortfall(workspace_id=room.workspace_id)
    if shortfall is None:
        return None
    log.warning(
        "assistant_no_credits",
        workspace_id=room.workspace_id,
        room_id=room.pk,
        balance=shortfall.balance,
        needed=shortfall.needed,
    )
    return no_credits_text(room=room)


def wallet_bill_usage(*, usage: UsageRecord) -> int:
    """Debit ``usage`` from its workspace's wallet, once; the credits charged (0 when free)."""
    credits = usage_credits(
        provider=usage.provider, model=usage.model, input_tokens=usage.input_tokens, output_tokens=usage.output_tokens
    )
    if credits == 0:
        return 0
    wallet = wallet_open(workspace_id=usage.workspace_id)
    tokens = f"{usage.input_tokens} in, {usage.output_tokens} out" + (" (estimated)" if usage.estimated else "")
    applied = wallet_debit_up_to(
        wallet_id=wallet.pk,
        amount=credits,
        reason=EntryReason.USAGE,
        idempotency_key=f"usage:{usage.pk}",
        actor=usage.user,  # the person whose question it answered
        usage=usage,
        note=f"{usage.provider} {usage.model}: {tokens} tokens",
    )
    charged = applied.entry.amount if applied is not None else 0
    if charged < credits:
        log.warning(
            "wallet_usage_underpaid",
            usage_id=usage.pk,
            workspace_id=usage.workspace_id,
            cost=credits,
            charged=charged,
        )
    return charged


def no_credits_text(*, room: Room) -> str:
    """What Mathia says in the room instead of answering, with the way to the wallet.

    No amounts: everyone in the room reads this, and only the workspace's admins may see its wallet.
    """
    from django.urls import reverse

    url = reverse("settings_wallet", args=[room.workspace.slug])
    return (
        "I can't answer right now: this workspace does not have enough credits left for an answer. "
        f"A workspace admin can add credits in [Settings → Wallet]({url})."
    )

"""Several providers behind one: retries with backoff, fallback, and timeouts.

The chain is a provider itself. It commits to an attempt at the attempt's first text
delta or tool call: before that, a failure is retried or handed to the next provider and
the consumer sees nothing of it; after that, a failure propagates as it is, since part of
the answer is already out. Events before the commit (``ProviderInfo`` above all) are held
back until it, so the consumer sees exactly one ``ProviderInfo``, from the provider that
answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence

import structlog

from .base import LLMError, LLMProvider, LLMRequest, StreamEvent, TextDelta, ToolCall

log = structlog.get_logger(__name__)

Sleep = Callable[[float], Awaitable[object]]


class AllProvidersFailed(LLMError):
    """Every provider of a chain failed before answering; ``failures`` has the last error of each."""

    def __init__(self, failures: Sequence[LLMError]) -> None:
        last = failures[-1]
        summary = "; ".join(f"{error.provider}: {error.message.rstrip('.')}" for error in failures)
        super().__init__(
            last.kind,
            f"No language model could answer. {summary}.",
            provider="chain",
            status=last.status,
            retry_after=last.retry_after,
        )
        self.failures = list(failures)


class ProviderChain:
    """Try ``providers`` in order until one answers.

    A retryable failure before the commit (rate limited, upstream, timeout, connection)
    is retried on the same provider up to ``max_retries`` times, after
    ``backoff_base * 2**attempt`` seconds (at most ``backoff_max``), or after the
    provider's ``Retry-After`` when that is longer. A ``Retry-After`` longer than
    ``backoff_max`` is not waited out: the chain moves on to the next provider, since a
    person is waiting. Other failures (auth, bad request, malformed) move on at once.
    When every provider has failed, the last error is raised (with one provider), or an
    :class:`AllProvidersFailed` naming each provider's failure.

    ``first_event_timeout`` bounds the wait for the commit, ``idle_timeout`` the silence
    between events after it (``None`` turns either off); both raise ``LLMError`` kind
    ``"timeout"``, retried before the commit like any timeout. Closing the chain's
    stream, or cancelling its consumer, closes the provider's stream and so its HTTP
    response. ``sleep`` is injectable so that tests of the backoff do not wait.
    """

    name = "chain"
    model = ""

    def __init__(
        self,
        providers: Sequence[LLMProvider],
        *,
        max_retries: int = 2,
        backoff_base: float = 0.5,
        backoff_max: float = 8.0,
        first_event_timeout: float | None = 30.0,
        idle_timeout: float | None = 30.0,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if not providers:
            raise ValueError("a provider chain needs at least one provider")
        self.providers = list(providers)
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.first_event_timeout = first_event_timeout
        self.idle_timeout = idle_timeout
        self._sleep = sleep

    async def stream(self, request: LLMRequest) -> AsyncIterator[StreamEvent]:
        failures: list[LLMError] = []
        for provider in self.providers:
            for attempt in range(self.max_retries + 1):
                events = provider.stream(request)
                try:
                    try:
                        head = await self._until_commit(provider, events)
                    except LLMError as error:
                        delay = self._retry_delay(error, attempt)
                        self._log_failure(error, attempt=attempt, delay=delay)
                        if delay is None:
                            failures.append(error)
                            break
                        await self._sleep(delay)
                        continue
                    for held in head:
                        yield held
                    async for event in self._after_commit(provider, events):
                        yield event
                    return
                finally:
                    # Also on the consumer's aclose() or cancellation at a yield above.
                    if isinstance(events, AsyncGenerator):
                        await events.aclose()
        if len(failures) == 1:
            raise failures[0]
        raise AllProvidersFailed(failures)

    async def _until_commit(self, provider: LLMProvider, events: AsyncIterator[StreamEvent]) -> list[StreamEvent]:
        """The events up to and including the first text delta or tool call (or all, if none comes)."""
        head: list[StreamEvent] = []
        deadline = asyncio.timeout(self.first_event_timeout)
        try:
            async with deadline:
                async for event in events:
                    head.append(event)
                    if isinstance(event, TextDelta | ToolCall):
                        break
        except TimeoutError:
            if not deadline.expired():
                raise
            raise LLMError(
                "timeout",
                f"{provider.name} did not start answering within {self.first_event_timeout:g} s.",
                provider=provider.name,
            ) from None
        return head

    async def _after_commit(
        self, provider: LLMProvider, events: AsyncIterator[StreamEvent]
    ) -> AsyncIterator[StreamEvent]:
        """The rest of the stream, ended by an ``LLMError`` when the provider falls silent too long."""
        if self.idle_timeout is None:
            async for event in events:
                yield event
            return
        watch = _SilenceWatch(self.idle_timeout)
        try:
            while True:
                watch.listening()
                try:
                    event = await anext(events)
                except StopAsyncIteration:
                    return
                except asyncio.CancelledError:
                    if watch.fired():
                        raise LLMError(
                            "timeout",
                            f"{provider.name} stopped answering for {self.idle_timeout:g} s mid-answer.",
                            provider=provider.name,
                        ) from None
                    raise
                watch.heard()
                yield event
        finally:
            watch.close()

    def _retry_delay(self, error: LLMError, attempt: int) -> float | None:
        """Seconds to wait before retrying the same provider, or None to move on."""
        if not error.retryable or attempt >= self.max_retries:
            return None
        delay = min(self.backoff_max, self.backoff_base * 2**attempt)
        if error.retry_after is not None:
            if error.retry_after > self.backoff_max:
                return None
            delay = max(delay, error.retry_after)
        return delay

    def _log_failure(self, error: LLMError, *, attempt: int, delay: float | None) -> None:
        log.warning(
            "llm_attempt_failed",
            provider=error.provider,
            kind=error.kind,
            status=error.status,
            attempt=attempt + 1,
            next="retry" if delay is not None else "next provider",
            retry_in=delay,
        )


class _SilenceWatch:
    """Cancels the current task when a stream has been silent for ``seconds`` while awaited.

    The timer is re-armed only when it fires early, not at every event: an ``asyncio.timeout``
    per event cost 7 µs of CPU each (a timer scheduled and cancelled), for tens of thousands
    of events a second at a few hundred streams. Time the consumer spends between two reads
    does not count as silence.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        self.task = task
        self.cancelling = task.cancelling()
        self.waiting = False
        self.since = self.loop.time()  # when the current wait for an event began
        self.expired = False
        self.handle = self.loop.call_at(self.since + seconds, self._check)

    def listening(self) -> None:
        self.waiting = True
        self.since = self.loop.time()

    def heard(self) -> None:
        self.waiting = False

    def _check(self) -> None:
        now = self.loop.time()
        if self.waiting and now >= self.since + self.seconds:
            self.expired = True
            self.task.cancel()
        else:
            self.handle = self.loop.call_at((self.since if self.waiting else now) + self.seconds, self._check)

    def fired(self) -> bool:
        """Whether the cancellation being handled is this watch's (and then absorb it)."""
        return self.expired and self.task.uncancel() <= self.cancelling

    def close(self) -> None:
        self.handle.cancel()

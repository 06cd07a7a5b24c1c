"""Concurrency limits where they belong: per endpoint across the process, per run across its fan-out.

Two bounds hold every model call of an auction:

* **per endpoint** (an agent's ``base_url`` and ``model``): at most the agent's
  ``max_concurrency`` calls in flight, shared by every run in the process that uses
  that endpoint, the way a gateway bounds each deployment. Unrelated endpoints never
  wait for each other. ``max_concurrency = 0`` (the default for agents) means no bound;
  the embedded pool bounds its servers to what they can take;
* **per run** (``SaleContext.max_concurrency``): at most that many calls of one auction
  in flight, whatever the endpoints, so one wide auction cannot starve the others.

:class:`Limiter` works from threads (``graph.invoke``) and from asyncio
(``graph.ainvoke``) at once: an async waiter awaits a future instead of blocking the
event loop, and a release from either side wakes waiters on both.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the pool builds its models from this package (sale_graph.llm.chat_openai): types only
    from sale_graph.pool import AgentSpec

RUN_LIMITERS_KEPT = 4096


class Limiter:
    """A counting limit shared by threads and event loops; ``limit <= 0`` means unbounded."""

    def __init__(self, limit: int) -> None:
        self.limit = int(limit)
        self._lock = threading.Lock()
        self._in_use = 0
        self._peak = 0
        self._waiters: list[Callable[[], None]] = []

    @property
    def in_use(self) -> int:
        """Calls holding a slot now."""
        with self._lock:
            return self._in_use

    @property
    def peak(self) -> int:
        """The most calls that ever held a slot at once (for tests and benchmarks)."""
        with self._lock:
            return self._peak

    def _take(self) -> bool:
        if self.limit > 0 and self._in_use >= self.limit:
            return False
        self._in_use += 1
        self._peak = max(self._peak, self._in_use)
        return True

    def acquire(self) -> None:
        """Block the calling thread until a slot is free, then take it."""
        while True:
            with self._lock:
                if self._take():
                    return
                event = threading.Event()
                self._waiters.append(event.set)
            event.wait()

    async def aacquire(self) -> None:
        """Wait (without blocking the event loop) until a slot is free, then take it."""
        loop = asyncio.get_running_loop()
        while True:
            with self._lock:
                if self._take():
                    return
                future: asyncio.Future[None] = loop.create_future()
                self._waiters.append(_waker(loop, future))
            await future

    def release(self) -> None:
        """Give a slot back and wake every waiter (they race for it; the losers wait again)."""
        with self._lock:
            self._in_use -= 1
            waiters, self._waiters = self._waiters, []
        for wake in waiters:
            wake()

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """``with limiter.hold():`` one slot for the block (threads)."""
        self.acquire()
        try:
            yield
        finally:
            self.release()

    @contextlib.asynccontextmanager
    async def ahold(self) -> AsyncIterator[None]:
        """``async with limiter.ahold():`` one slot for the block (asyncio)."""
        await self.aacquire()
        try:
            yield
        finally:
            self.release()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _waker(loop: asyncio.AbstractEventLoop, future: asyncio.Future[None]) -> Callable[[], None]:
    """Wake an async waiter from any thread (its own loop resolves the future)."""

    def wake() -> None:
        loop.call_soon_threadsafe(_resolve, future)

    return wake


_lock = threading.Lock()
_endpoints: dict[tuple[str, str], Limiter] = {}
_runs: OrderedDict[str, Limiter] = OrderedDict()


def endpoint_limiter(agent: AgentSpec) -> Limiter:
    """The process-wide limit of ``agent``'s endpoint (``base_url`` and ``model``), created on first use.

    Agents naming the same endpoint share it; the first agent seen sets its bound.
    """
    key = (agent.base_url.rstrip("/"), agent.model)
    with _lock:
        limiter = _endpoints.get(key)
        if limiter is None:
            limiter = _endpoints[key] = Limiter(agent.max_concurrency)
        return limiter


def run_limiter(run_id: str, limit: int) -> Limiter:
    """The fan-out bound of one run (its auction id); the most recent runs' bounds are kept."""
    with _lock:
        limiter = _runs.get(run_id)
        if limiter is None:
            limiter = _runs[run_id] = Limiter(limit)
            while len(_runs) > RUN_LIMITERS_KEPT:
                _runs.popitem(last=False)
        else:
            _runs.move_to_end(run_id)
        return limiter


def forget_run(run_id: str) -> None:
    """Drop a finished run's bound."""
    with _lock:
        _runs.pop(run_id, None)


@contextlib.contextmanager
def call_slot(agent: AgentSpec, run: Limiter | None) -> Iterator[None]:
    """Hold a slot of the run's bound, then of the endpoint's, for one call (threads)."""
    with run.hold() if run is not None else contextlib.nullcontext(), endpoint_limiter(agent).hold():
        yield


@contextlib.asynccontextmanager
async def acall_slot(agent: AgentSpec, run: Limiter | None) -> AsyncIterator[None]:
    """Hold a slot of the run's bound, then of the endpoint's, for one call (asyncio)."""
    async with contextlib.AsyncExitStack() as stack:
        if run is not None:
            await stack.enter_async_context(run.ahold())
        await stack.enter_async_context(endpoint_limiter(agent).ahold())
        yield

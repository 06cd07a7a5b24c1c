"""Concurrency limits where they belong: per endpoint across the process, per run across its fan-out.

Two bounds hold every model call of an auction:

* **per endpoint** (an agent's ``base_url`` and ``model``): at most the agent's
  ``max_concurrency`` calls in flight, shared by every run in the process that uses
  that endpoint, the way a gateway bounds each deployment. Unrelated endpoints never
  wait for each other. ``max_concurrency = 0`` (the default for agents) means no bound;
  the embedded pool bounds its servers to what they can take;
* **per run** (``SaleContext.max_concurrency``): at most that many calls of one auction
  in flight, whatever the endpoints, so one wide auction cannot starve the others.

Processes that share endpoints (the workers of ``sale gateway``, on one machine or
several) each take their share of an endpoint's bound: :func:`share_endpoints` makes this
process one of ``workers`` for a pool's endpoints, and each one's limit here becomes
:func:`worker_limit` ``= floor(max_concurrency / workers)``, so the workers together never
exceed ``max_concurrency`` (the ``max_concurrency mod workers`` slots left over stay unused).
A bounded endpoint whose ``max_concurrency`` is below ``workers`` would get no slot: that
is an error (:class:`~sale_graph.errors.PoolError`, naming the agent), never a silent 0 or
an over-subscribed 1.

:class:`Limiter` works from threads (``graph.invoke``) and from asyncio
(``graph.ainvoke``) at once: an async waiter awaits a future instead of blocking the
event loop, and a release from either side wakes waiters on both.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from sale_graph.errors import PoolError

if TYPE_CHECKING:  # the pool builds its models from this package (sale_graph.llm.chat_openai): types only
    from sale_graph.pool import AgentSpec

RUN_LIMITERS_KEPT = 4096


class Limiter:
    """A counting limit shared by threads and event loops; ``limit <= 0`` means unbounded.

    Slots go to waiting calls in the order they asked, each handed over by the call that
    gives one back: the waiter does not race for it, and a release wakes one waiter, not
    every one. A waiter on the releasing thread's own event loop is resolved at once; one
    on another loop or thread is woken through its loop (``call_soon_threadsafe``) or its
    event. A waiter cancelled after its slot was handed over gives it back.
    """

    def __init__(self, limit: int) -> None:
        self.limit = int(limit)
        self._lock = threading.Lock()
        self._in_use = 0
        self._peak = 0
        self._waiters: deque[Callable[[], None]] = deque()

    @property
    def in_use(self) -> int:
        """Calls holding a slot now (a slot handed to a waiter not yet resumed counts)."""
        with self._lock:
            return self._in_use

    @property
    def waiting(self) -> int:
        """Calls waiting for a slot now."""
        with self._lock:
            return len(self._waiters)

    @property
    def peak(self) -> int:
        """The most calls that ever held a slot at once (for tests and benchmarks)."""
        with self._lock:
            return self._peak

    def set_limit(self, limit: int) -> None:
        """Change the bound (``<= 0``: unbounded); a raised bound hands its new slots to waiters, calls holding slots keep them."""
        with self._lock:
            self.limit = int(limit)
            granted = self._grant()
        for wake in granted:
            wake()

    def _free(self) -> bool:
        return self.limit <= 0 or self._in_use < self.limit

    def _take(self) -> None:
        self._in_use += 1
        self._peak = max(self._peak, self._in_use)

    def _grant(self) -> list[Callable[[], None]]:
        """Take the free slots for the first waiters (under the lock); their wake-ups, to call outside it."""
        granted = []
        while self._waiters and self._free():
            self._take()
            granted.append(self._waiters.popleft())
        return granted

    def acquire(self) -> None:
        """Block the calling thread until it holds a slot."""
        with self._lock:
            if not self._waiters and self._free():
                self._take()
                return
            event = threading.Event()
            self._waiters.append(event.set)
        try:
            event.wait()  # set once the slot is ours
        except BaseException:  # interrupted (Ctrl-C in the main thread) while waiting
            self._give_up(event.set)
            raise

    async def aacquire(self) -> None:
        """Wait (without blocking the event loop) until this task holds a slot."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if not self._waiters and self._free():
                self._take()
                return
            future: asyncio.Future[None] = loop.create_future()
            wake = _waker(self, loop, future)
            self._waiters.append(wake)
        try:
            await future
        except BaseException:  # cancelled (or the loop is going away) while waiting
            if not future.done() and not loop.is_closed():  # (on a closed loop the hand-over passes the slot on itself)
                future.cancel()  # a hand-over on its way finds it cancelled and passes the slot on (_hand_over)
            self._give_up(wake, handed=future.done() and not future.cancelled())
            raise

    def _give_up(self, wake: Callable[[], None], handed: bool = True) -> None:
        """A waiter that stops waiting: out of the queue, or, if its slot was already taken for it, the slot passed on.

        ``handed`` is ``False`` when the slot, if any, is passed on by its hand-over instead.
        """
        with self._lock:
            queued = wake in self._waiters
            if queued:
                self._waiters.remove(wake)
        if not queued and handed:
            self.release()

    def release(self) -> None:
        """Give a slot back: it goes to the first waiter, if any."""
        with self._lock:
            self._in_use -= 1
            granted = self._grant()
        for wake in granted:
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


def _hand_over(limiter: Limiter, future: asyncio.Future[None]) -> None:
    """Give ``future``'s waiter the slot taken for it; a waiter that is gone passes it on."""
    if future.cancelled():
        limiter.release()
    elif not future.done():
        future.set_result(None)


def _waker(limiter: Limiter, loop: asyncio.AbstractEventLoop, future: asyncio.Future[None]) -> Callable[[], None]:
    """Hand an async waiter its slot from any thread: at once on its own loop, else through the loop."""

    def wake() -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            _hand_over(limiter, future)
            return
        try:
            loop.call_soon_threadsafe(_hand_over, limiter, future)
        except RuntimeError:  # its loop is closed: nobody will take the slot there
            limiter.release()

    return wake


_lock = threading.Lock()
_endpoints: dict[tuple[str, str], tuple[int, Limiter]] = {}  # endpoint -> (its max_concurrency, this process's limiter)
_shares: dict[tuple[str, str], int] = {}  # endpoint -> the processes sharing its bound (share_endpoints)
_runs: OrderedDict[str, Limiter] = OrderedDict()


def worker_limit(max_concurrency: int, workers: int) -> int:
    """One worker's slots at an endpoint bounded to ``max_concurrency`` and shared by ``workers`` processes.

    ``floor(max_concurrency / workers)``, so the workers' slots together never pass the
    bound; ``0`` (no bound) stays ``0``.

    Args:
        max_concurrency: the endpoint's bound (the agent's ``max_concurrency``; 0: none).
        workers: the processes sharing the endpoint (at least 1).

    Raises:
        ValueError: ``workers < 1``, ``max_concurrency < 0``, or ``0 < max_concurrency < workers``
            (a worker would get no slot).
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if max_concurrency < 0:
        raise ValueError(f"max_concurrency must be non-negative, got {max_concurrency}")
    if 0 < max_concurrency < workers:
        raise ValueError(f"max_concurrency {max_concurrency} cannot be shared by {workers} workers: each needs a slot")
    return max_concurrency // workers


def share_endpoints(agents: Iterable[AgentSpec], workers: int, source: str = "pool") -> dict[str, int]:
    """Make this process one of ``workers`` that share the endpoints of ``agents``: each takes its share.

    From now on the limiter of each of these endpoints in this process holds
    :func:`worker_limit` slots (a limiter made before is changed too; ``workers=1`` gives the
    whole bound back). Other endpoints keep their whole bound.

    Args:
        agents: the pool's agents.
        workers: the processes sharing their endpoints.
        source: where the agents come from (the pool file), for the error.

    Returns:
        agent name -> its slots in this process (0: no bound).

    Raises:
        PoolError: an agent's ``max_concurrency`` is below ``workers`` (nothing is changed); the
            message names the agents and the ways out.
        ValueError: ``workers < 1``.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    agents = list(agents)
    with _lock:
        bounds = {a.name: _endpoints[_key(a)][0] if _key(a) in _endpoints else a.max_concurrency for a in agents}
        short = [name for name, bound in bounds.items() if 0 < bound < workers]
        if short:
            names = ", ".join(f"{name} (max_concurrency {bounds[name]})" for name in short)
            raise PoolError(
                f"{source}: {workers} gateway workers share each endpoint's max_concurrency (each worker gets "
                f"max_concurrency // {workers} slots), and {names} would leave a worker with none: raise its "
                f"max_concurrency to {workers} or more if the endpoint can take that, set 0 (no bound), or run fewer "
                "workers")
        for a in agents:
            key = _key(a)
            _shares[key] = workers
            if key in _endpoints:
                declared, limiter = _endpoints[key]
                limiter.set_limit(worker_limit(declared, workers))
        return {name: worker_limit(bound, workers) for name, bound in bounds.items()}


def endpoint_workers(agent: AgentSpec) -> int:
    """How many processes share ``agent``'s endpoint (:func:`share_endpoints`; 1 unless set)."""
    with _lock:
        return _shares.get(_key(agent), 1)


def _key(agent: AgentSpec) -> tuple[str, str]:
    return agent.base_url.rstrip("/"), agent.model


def endpoint_limiter(agent: AgentSpec) -> Limiter:
    """The process-wide limit of ``agent``'s endpoint (``base_url`` and ``model``), created on first use.

    Agents naming the same endpoint share it; the first agent seen sets its bound. Its limit
    is this process's share of it (:func:`share_endpoints`; all of it unless set).
    """
    key = _key(agent)
    with _lock:
        known = _endpoints.get(key)
        if known is None:
            limit = worker_limit(agent.max_concurrency, _shares.get(key, 1))  # share_endpoints checked it
            known = _endpoints[key] = (agent.max_concurrency, Limiter(limit))
        return known[1]


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

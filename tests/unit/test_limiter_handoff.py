"""The per-run and per-endpoint limiter hands freed slots to waiters in order, one each, across threads and loops."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from sale_graph.llm.limits import Limiter


def test_slots_go_to_async_waiters_in_the_order_they_asked() -> None:
    limiter = Limiter(1)
    order: list[int] = []

    async def waiter(i: int) -> None:
        async with limiter.ahold():
            order.append(i)
            await asyncio.sleep(0)

    async def main() -> None:
        await limiter.aacquire()
        tasks = [asyncio.create_task(waiter(i)) for i in range(6)]
        await asyncio.sleep(0.01)  # every waiter is queued now
        assert limiter.waiting == 6
        limiter.release()
        await asyncio.gather(*tasks)

    asyncio.run(main())
    assert order == [0, 1, 2, 3, 4, 5]
    assert limiter.in_use == 0 and limiter.waiting == 0 and limiter.peak == 1


def test_a_release_wakes_one_waiter_not_all() -> None:
    """The freed slot is handed over: the other waiters are not woken to race and wait again."""
    limiter = Limiter(1)
    wakes = 0

    async def main() -> None:
        nonlocal wakes
        await limiter.aacquire()
        futures = []
        for _ in range(5):
            task = asyncio.create_task(limiter.aacquire())
            futures.append(task)
        await asyncio.sleep(0.01)
        queued = list(limiter._waiters)  # the wake-ups, in order
        counted = []
        for wake in queued:
            def counting(w=wake) -> None:
                nonlocal wakes
                wakes += 1
                w()
            counted.append(counting)
        limiter._waiters.clear()
        limiter._waiters.extend(counted)
        limiter.release()
        await asyncio.sleep(0.01)
        assert wakes == 1 and sum(t.done() for t in futures) == 1
        for _ in range(4):
            limiter.release()
            await asyncio.sleep(0.01)
        assert wakes == 5 and all(t.done() for t in futures)
        limiter.release()

    asyncio.run(main())
    assert limiter.in_use == 0


def test_a_waiter_cancelled_after_its_hand_over_passes_the_slot_on() -> None:
    limiter = Limiter(1)

    async def main() -> None:
        await limiter.aacquire()
        first = asyncio.create_task(limiter.aacquire())
        second = asyncio.create_task(limiter.aacquire())
        await asyncio.sleep(0.01)
        limiter.release()  # the slot is handed to ``first`` (its future resolved) ...
        first.cancel()  # ... which is cancelled before it runs again
        with pytest.raises(asyncio.CancelledError):
            await first
        await asyncio.wait_for(second, 1)  # the slot went on to the next waiter
        assert limiter.in_use == 1
        limiter.release()

    asyncio.run(main())
    assert limiter.in_use == 0 and limiter.waiting == 0


def test_a_waiter_cancelled_while_queued_leaves_the_queue() -> None:
    limiter = Limiter(1)

    async def main() -> None:
        await limiter.aacquire()
        queued = asyncio.create_task(limiter.aacquire())
        await asyncio.sleep(0.01)
        queued.cancel()
        with pytest.raises(asyncio.CancelledError):
            await queued
        assert limiter.waiting == 0
        limiter.release()

    asyncio.run(main())
    assert limiter.in_use == 0


def test_a_thread_release_hands_the_slot_to_a_waiter_on_another_loop() -> None:
    limiter = Limiter(1)
    limiter.acquire()
    got: list[float] = []

    def loop_thread() -> None:
        async def main() -> None:
            await limiter.aacquire()
            got.append(time.monotonic())
            limiter.release()

        asyncio.run(main())

    t = threading.Thread(target=loop_thread)
    t.start()
    deadline = time.monotonic() + 2
    while limiter.waiting == 0 and time.monotonic() < deadline:
        time.sleep(0.005)
    released = time.monotonic()
    limiter.release()
    t.join(2)
    assert got and got[0] >= released
    assert limiter.in_use == 0


def test_a_waiter_on_a_closed_loop_passes_its_slot_on() -> None:
    limiter = Limiter(1)
    limiter.acquire()
    loop = asyncio.new_event_loop()
    task = loop.create_task(limiter.aacquire())
    loop.run_until_complete(asyncio.sleep(0.01))  # the task is queued on the limiter
    task.cancel()
    loop.run_until_complete(asyncio.gather(task, return_exceptions=True))
    assert limiter.waiting == 0

    queued = loop.create_task(limiter.aacquire())
    loop.run_until_complete(asyncio.sleep(0.01))
    assert limiter.waiting == 1
    loop.close()  # the loop is gone with its waiter still queued
    waiter = threading.Thread(target=limiter.acquire)
    waiter.start()
    time.sleep(0.02)
    limiter.release()  # handed to the dead loop's waiter, which cannot take it: it goes to the thread
    waiter.join(2)
    assert not waiter.is_alive() and limiter.in_use == 1
    queued._log_destroy_pending = False  # type: ignore[attr-defined]  # it can never finish: its loop is closed


def test_a_raised_limit_hands_its_new_slots_to_waiters() -> None:
    limiter = Limiter(1)
    limiter.acquire()
    done = threading.Event()
    started = []

    def worker() -> None:
        limiter.acquire()
        started.append(1)
        if len(started) == 2:
            done.set()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(0.02)
    assert limiter.waiting == 2
    limiter.set_limit(3)
    assert done.wait(2)
    assert limiter.in_use == 3 and limiter.waiting == 0
    for t in threads:
        t.join()


class _InterruptedEvent:
    """A ``threading.Event`` whose wait is interrupted (a Ctrl-C in the main thread), after ``before()`` ran."""

    before: Any = None

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def wait(self) -> None:
        type(self).before()
        raise KeyboardInterrupt


@pytest.mark.parametrize("handed_over", [False, True])
def test_a_thread_interrupted_while_waiting_never_keeps_a_slot(monkeypatch: pytest.MonkeyPatch, handed_over: bool) -> None:
    """Interrupted before its turn it leaves the queue; interrupted after the hand-over it gives the slot back."""
    limiter = Limiter(1)
    limiter.acquire()
    _InterruptedEvent.before = limiter.release if handed_over else (lambda: None)
    monkeypatch.setattr("sale_graph.llm.limits.threading.Event", _InterruptedEvent)
    with pytest.raises(KeyboardInterrupt):
        limiter.acquire()
    expected_in_use = 0 if handed_over else 1
    assert limiter.waiting == 0 and limiter.in_use == expected_in_use


def test_a_waiter_whose_coroutine_is_closed_passes_a_pending_hand_over_on() -> None:
    """A waiter torn down without a cancellation (its coroutine closed) while its hand-over is on its way."""
    limiter = Limiter(1)

    async def main() -> None:
        await limiter.aacquire()
        waiter = limiter.aacquire()
        step = waiter.send(None)  # queued, suspended on its future
        assert limiter.waiting == 1
        done = threading.Event()
        threading.Thread(target=lambda: (limiter.release(), done.set())).start()  # hand-over through the loop
        done.wait(2)
        waiter.close()  # GeneratorExit at the await: the future is still pending
        await asyncio.sleep(0.01)  # the hand-over runs, finds the future cancelled, and passes the slot on
        assert step is not None and limiter.in_use == 0 and limiter.waiting == 0

    asyncio.run(main())

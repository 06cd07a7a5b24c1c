"""A coroutine started at once runs up to its first wait, then finishes in the task that awaits it, as an eager task does."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from sale_graph.llm.eager_write import started


def test_a_coroutine_that_never_waits_is_done_before_it_is_awaited() -> None:
    steps: list[str] = []

    async def write() -> str:
        steps.append("written")
        return "ok"

    async def main() -> str:
        awaitable = started(write())
        assert steps == ["written"]  # ran inside started(), not in a later turn of the loop
        return await asyncio.create_task(_await(awaitable))

    assert asyncio.run(main()) == "ok"


async def _await(awaitable: Any) -> Any:
    return await awaitable


def test_a_coroutine_that_waits_goes_on_in_the_task_from_where_it_stopped() -> None:
    steps: list[str] = []

    async def write(gate: asyncio.Future[str]) -> str:
        steps.append("first part")
        value = await gate
        steps.append(f"rest after {value}")
        await asyncio.sleep(0)
        return "done"

    async def main() -> str:
        gate: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(_await(started(write(gate))))
        assert steps == ["first part"]
        await asyncio.sleep(0.01)
        assert not task.done()
        gate.set_result("drain")
        result = await task
        assert steps == ["first part", "rest after drain"]
        return result

    assert asyncio.run(main()) == "done"


def test_an_error_before_the_first_wait_is_raised_where_it_is_awaited() -> None:
    async def write() -> None:
        raise OSError("broken pipe")

    async def main() -> None:
        awaitable = started(write())  # nothing raised here
        with pytest.raises(OSError, match="broken pipe"):
            await asyncio.create_task(_await(awaitable))

    asyncio.run(main())


def test_cancelling_the_task_cancels_the_started_coroutine_where_it_waits() -> None:
    seen: list[str] = []

    async def write(gate: asyncio.Future[None]) -> None:
        try:
            await gate
        except asyncio.CancelledError:
            seen.append("cancelled inside")
            raise

    async def main() -> None:
        gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(_await(started(write(gate))))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert gate.cancelled()

    asyncio.run(main())
    assert seen == ["cancelled inside"]


def test_an_error_thrown_in_reaches_the_coroutine_s_own_handler() -> None:
    async def write(gate: asyncio.Future[None]) -> str:
        try:
            await gate
        except ValueError as exc:
            return f"handled {exc}"
        return "not reached"

    async def main() -> str:
        gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(_await(started(write(gate))))
        await asyncio.sleep(0)
        gate.set_exception(ValueError("reset"))
        return await task

    assert asyncio.run(main()) == "handled reset"

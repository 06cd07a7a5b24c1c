"""aiohttp requests that write their body when they are sent, on Python 3.11 as aiohttp does on 3.12.

aiohttp writes a request's body in a task of its own. From Python 3.12 it starts that
task eagerly, so a small body goes out before ``send`` returns; on 3.11 the task waits for
its turn in the event loop's queue, and with many auctions on one loop that turn comes
5-40 ms later (``benchmarks/client_cpu.py``'s loop under load: a median of 15 ms between
a call entering the HTTP client and its first byte on the socket, against 0.2 ms on 3.12).
Every model call of an auction pays it, once per round.

:class:`EagerWriteRequest` is aiohttp's request with the body's writer run at once up to
its first real wait, as an eager task would: a body that fits the socket's buffer is
written there and then, and one that does not goes on in aiohttp's task from where it
stopped. What is written, its errors and its cancellation are aiohttp's own.
:func:`eager_session_factory` makes the sessions of the per-loop clients
(:mod:`sale_graph.llm.async_http`) with it, on Python 3.11 only.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any

import aiohttp

__all__ = ["EagerWriteRequest", "NEEDED", "eager_session_factory", "started"]

#: Whether this Python needs it (aiohttp starts the writer eagerly itself from 3.12).
NEEDED = sys.version_info < (3, 12)


async def _result(value: Any) -> Any:
    return value


async def _raise(exc: BaseException) -> Any:
    raise exc


@types.coroutine
def _resume(coro: Coroutine[Any, Any, Any], waiting_on: Any) -> Generator[Any, Any, Any]:
    """Go on with ``coro``, which is suspended on ``waiting_on``, inside the task that awaits this."""
    while True:
        try:
            sent = yield waiting_on
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:  # noqa: BLE001 - a cancellation or error the task throws in goes to the coroutine
            try:
                waiting_on = coro.throw(exc)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                waiting_on = coro.send(sent)
            except StopIteration as stop:
                return stop.value


def started(coro: Coroutine[Any, Any, Any]) -> Awaitable[Any]:
    """Run ``coro`` now up to its first suspension; the returned awaitable finishes it (or gives its result).

    The same as what an eager task does with its coroutine before the task is queued.
    """
    try:
        waiting_on = coro.send(None)
    except StopIteration as stop:
        return _result(stop.value)
    except BaseException as exc:  # noqa: BLE001 - raised when the writer is awaited, as from aiohttp's task
        return _raise(exc)
    return _resume(coro, waiting_on)


class EagerWriteRequest(aiohttp.ClientRequest):
    """aiohttp's request whose body writer starts at once instead of in a task queued for later."""

    def write_bytes(self, *args: Any, **kwargs: Any) -> Any:  # an awaitable, as aiohttp needs
        """The writer of aiohttp, started (see :func:`started`); aiohttp wraps what it returns in its task as before."""
        return started(super().write_bytes(*args, **kwargs))


def eager_session_factory(connector: Callable[[], aiohttp.BaseConnector]) -> Callable[[], aiohttp.ClientSession]:
    """A factory of sessions on ``connector()`` whose requests write their body at once.

    Args:
        connector: Makes the session's connector (called on the loop that uses the session).

    Returns:
        What ``AiohttpTransport(client=...)`` takes: called once, on the first request.
    """

    def session() -> aiohttp.ClientSession:
        return aiohttp.ClientSession(connector=connector(), request_class=EagerWriteRequest)

    return session

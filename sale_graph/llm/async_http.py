"""One async HTTP client for the chat models that works on every event loop, one after another or at once.

An ``httpx.AsyncClient`` keeps its open connections bound to the event loop that
opened them. ``langchain_openai`` shares one cached client per endpoint across every
``ChatOpenAI`` of the process, and SALE reuses its chat models across runs
(:func:`~sale_graph.llm.call.openai_factory`), so after a first
``asyncio.run(graph.ainvoke(...))`` a second one, on a new loop, would reuse a
connection of the closed loop: ``RuntimeError: Event loop is closed``. Scripts that
call ``asyncio.run`` per request, pytest-asyncio's per-test loops and worker pools
with a loop per thread all do that.

:func:`loop_local_async_client` is the client the pool's chat models get instead
(``http_async_client``): its transport sends each request through a client of the
running loop's own, made on the loop's first request and dropped once that loop is
closed or gone. Within one loop the connections stay open and are reused, as before.
The per-loop client is an ordinary ``AsyncClient``: proxies from the environment,
certificates and connection limits are httpx's defaults (the openai SDK's limits).

Both clients come from the HTTP library the installed openai SDK sends with (``httpx2``
for ``openai>=3``, an API-identical fork of ``httpx``; ``httpx`` before), as
``langchain_openai`` picks it: the SDK then uses the client natively, and ``httpx2``'s
connection pool assigns a request in one pass over its connections where ``httpx``'s
(httpcore 1.0) rescans them, polling each idle socket, for every queued request, which
at a few dozen concurrent calls cost more CPU than the rest of the call (issue 21).
"""

from __future__ import annotations

import asyncio
import threading
import urllib.request
import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # httpx2 mirrors httpx's API; the types are checked against httpx
    import httpx
else:
    try:  # the library the installed openai SDK sends with, as langchain_openai resolves it
        from langchain_openai._compat import httpx
    except ImportError:  # pragma: no cover - a langchain_openai without it predates httpx2
        import httpx

#: The openai SDK's connection limits (``openai._constants.DEFAULT_CONNECTION_LIMITS``).
CONNECTION_LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=100, keepalive_expiry=5.0)


class LoopLocalTransport(httpx.AsyncBaseTransport):
    """Sends each request through an ``httpx.AsyncClient`` of the running event loop's own.

    A loop's client is made on its first request and forgotten when the loop is closed
    or garbage-collected, so a connection never outlives the loop it belongs to.
    """

    def __init__(self) -> None:
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def client_for(self, loop: asyncio.AbstractEventLoop) -> httpx.AsyncClient:
        """The client of ``loop`` (made on first use); clients of closed loops are dropped."""
        with self._lock:
            client = self._clients.get(loop)
            if client is None:
                for old in [lp for lp in self._clients if lp.is_closed()]:
                    del self._clients[old]  # its connections cannot be closed any more: their loop is gone
                client = self._clients[loop] = httpx.AsyncClient(limits=CONNECTION_LIMITS, follow_redirects=False)
            return client

    def loops(self) -> int:
        """How many loops have a client now (for tests and diagnostics)."""
        with self._lock:
            return sum(1 for lp in self._clients if not lp.is_closed())

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` with the running loop's client; the response streams as usual."""
        client = self.client_for(asyncio.get_running_loop())
        return await client.send(request, stream=True)

    async def aclose(self) -> None:
        """Close the running loop's client (the others belong to other loops)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            client = self._clients.pop(loop, None)
        if client is not None:
            await client.aclose()


_clients: dict[Any, httpx.AsyncClient] = {}
_clients_lock = threading.Lock()


def loop_local_async_client(timeout: float | None, endpoint: tuple[str, str] | None = None) -> httpx.AsyncClient:
    """The process's async client for chat models with this timeout and endpoint, usable on any event loop.

    Shared by every chat model of the endpoint (an agent's ``base_url`` and ``model``)
    with the same timeout, so its connections are pooled across agents, phases and runs,
    per loop. Each endpoint has a pool of its own, as it has a concurrency limit of its
    own: a pool walks all its connections twice for every request, so one pool for
    every endpoint made each call pay for the connections of all the others (0.31 ms
    of CPU a call with 40 auctions of three agents in flight, 0.16 ms with a pool each).

    Args:
        timeout: the request timeout in seconds (``None``: httpx's default); the openai
            SDK also sends its own per request.
        endpoint: ``(base_url, model)``; ``None`` shares one pool among all callers with this timeout.

    Returns:
        An ``AsyncClient`` whose transport is a :class:`LoopLocalTransport`.
    """
    key = (timeout, endpoint)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = httpx.AsyncClient(transport=LoopLocalTransport(), timeout=timeout, follow_redirects=True)
        return client


def proxies_in_environment() -> bool:
    """Whether httpx would pick up a proxy from the environment (``HTTPS_PROXY``...) or the system's settings.

    A chat model given its own async client (:func:`loop_local_async_client`) then gets
    ``http_socket_options=()`` too, so that ``langchain_openai`` keeps httpx's proxy
    detection for the blocking calls, as it does for a model built with no client.
    """
    try:
        return bool(urllib.request.getproxies())
    except Exception:  # noqa: BLE001 - a broken system proxy setting reads as none, as in httpx
        return False


__all__ = ["CONNECTION_LIMITS", "LoopLocalTransport", "loop_local_async_client", "proxies_in_environment"]

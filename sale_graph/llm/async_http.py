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
certificates and connection limits are httpx's defaults (the openai SDK's limits); the
certificates are read once a process (:func:`shared_ssl_context`), not by each loop.

Both clients come from the HTTP library the installed openai SDK sends with (``httpx2``
for ``openai>=3``, an API-identical fork of ``httpx``; ``httpx`` before), as
``langchain_openai`` picks it: the SDK then uses the client natively, and ``httpx2``'s
connection pool assigns a request in one pass over its connections where ``httpx``'s
(httpcore 1.0) rescans them, polling each idle socket, for every queued request, which
at a few dozen concurrent calls cost more CPU than the rest of the call.

The per-loop client sends on aiohttp when it is installed (the openai SDK's own
``DefaultAioHttpClient``, its ``aiohttp`` extra, which sale-graph requires): the same
``AsyncClient`` type, the same request (method, URL, headers in their order, body; the
names of the headers httpx adds go out in lower case), the same
responses and, through the adapter's mapping (and one fix, in
:meth:`LoopLocalTransport.handle_async_request`), the same ``httpx`` exceptions, but
aiohttp parses responses in C and writes a small request in one send where
httpcore's h11 writes the headers then the body: 0.3-0.7 ms less CPU an auction call
(``benchmarks/client_cpu.py``, see docs/benchmarks.md). An aiohttp session warns when
it is dropped open, so the loop closes it as it shuts down its async generators
(``asyncio.run`` and ``asyncio.Runner``, uvicorn's, do); a loop closed without that leaves the
session to the garbage collector, which warns ("Unclosed client session").
Without aiohttp the per-loop client is the library's own ``AsyncClient``, as before.
"""

from __future__ import annotations

import asyncio
import os
import threading
import urllib.request
import weakref
from collections.abc import AsyncGenerator, Callable
from typing import TYPE_CHECKING, Any, cast

import aiohttp
import openai

from sale_graph.llm import eager_write

if TYPE_CHECKING:  # httpx2 mirrors httpx's API; the types are checked against httpx
    import ssl

    import httpx
else:
    try:  # the library the installed openai SDK sends with, as langchain_openai resolves it
        from langchain_openai._compat import httpx
    except ImportError:  # pragma: no cover - a langchain_openai without it predates httpx2
        import httpx

_AIOHTTP_ERRORS: tuple[type[BaseException], ...] = (aiohttp.ClientError,)

#: The openai SDK's connection limits (``openai._constants.DEFAULT_CONNECTION_LIMITS``).
CONNECTION_LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=100, keepalive_expiry=5.0)


_ssl_contexts: dict[tuple[str | None, str | None], ssl.SSLContext] = {}
_ssl_lock = threading.Lock()


def shared_ssl_context() -> ssl.SSLContext:
    """The TLS context every per-loop client verifies with: the HTTP library's default, built once a process.

    A client builds its context when it is made (``verify=True``: the CA bundle named by
    ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``, else the system's, read and parsed), 20-70 ms of
    CPU; a per-loop client is made on the loop, so every new loop (each ``asyncio.run``)
    stalled all its runs that long for each endpoint. An ``SSLContext`` may serve any
    number of connections, threads and loops: this is the one ``verify=True`` builds, kept
    per value of those two variables, so the certificates a client trusts are the ones
    it would have loaded itself.
    """
    key = (os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
    with _ssl_lock:
        context = _ssl_contexts.get(key)
        if context is None:
            context = _ssl_contexts[key] = httpx.create_ssl_context()
        return context


def loop_client() -> httpx.AsyncClient:
    """A new client for one event loop: aiohttp's through the SDK's adapter when installed, else the library's own.

    Returns:
        An ``AsyncClient`` with the SDK's connection limits that follows no redirects
        (the outer client does), verifying with :func:`shared_ssl_context`.
    """
    # The SDK's class is typed with httpx2, which mirrors the httpx types this module is checked against.
    sdk_aiohttp_client = cast("Callable[..., httpx.AsyncClient]", openai.DefaultAioHttpClient)
    verify = shared_ssl_context()
    try:
        client = sdk_aiohttp_client(limits=CONNECTION_LIMITS, follow_redirects=False, verify=verify)
    except RuntimeError:  # the SDK's stand-in when aiohttp is not installed
        return httpx.AsyncClient(limits=CONNECTION_LIMITS, follow_redirects=False, verify=verify)
    if eager_write.NEEDED:
        for transport in [client._transport, *client._mounts.values()]:
            _write_eagerly(transport)
    return client


def _write_eagerly(transport: Any) -> None:
    """Have an aiohttp transport of the SDK make its session with :class:`~sale_graph.llm.eager_write.EagerWriteRequest`.

    The session is the one the transport would make itself (``AiohttpTransport.get_client``:
    a ``TCPConnector`` with its connection limit, keep-alive expiry and TLS context); a
    transport that was given a session, a socket path or a local address is left as it is.
    """
    if (not all(hasattr(transport, name) for name in ("client", "limits", "ssl_context", "uds", "local_address"))
            or transport.client is not None or transport.uds or transport.local_address):
        return
    limits, ssl_context = transport.limits, transport.ssl_context

    def connector() -> aiohttp.BaseConnector:
        limit = {} if limits.max_connections is None else {"limit": limits.max_connections}
        return aiohttp.TCPConnector(keepalive_timeout=limits.keepalive_expiry, ssl=ssl_context, **limit)

    transport.client = eager_write.eager_session_factory(connector)


async def _closed_at_shutdown(client: httpx.AsyncClient) -> AsyncGenerator[None, None]:
    """Suspends until the loop shuts down its async generators, then closes ``client`` on that loop."""
    try:
        yield
    finally:
        await client.aclose()


class LoopLocalTransport(httpx.AsyncBaseTransport):
    """Sends each request through an ``httpx.AsyncClient`` of the running event loop's own.

    A loop's client (:func:`loop_client`) is made on its first request, closed when the
    loop shuts down its async generators, and forgotten when the loop is closed or
    garbage-collected, so a connection never outlives the loop it belongs to.
    """

    def __init__(self) -> None:
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = weakref.WeakKeyDictionary()
        # Each loop's closer: the loop holds its async generators weakly, so they are kept here.
        self._closers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncGenerator[None, None]] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def client_for(self, loop: asyncio.AbstractEventLoop) -> httpx.AsyncClient:
        """The client of ``loop`` (made on first use); clients of closed loops are dropped."""
        with self._lock:
            client = self._clients.get(loop)
            if client is None:
                for old in [lp for lp in self._clients if lp.is_closed()]:
                    del self._clients[old]  # its connections cannot be closed any more: their loop is gone
                    self._closers.pop(old, None)
                client = self._clients[loop] = loop_client()
            return client

    def loops(self) -> int:
        """How many loops have a client now (for tests and diagnostics)."""
        with self._lock:
            return sum(1 for lp in self._clients if not lp.is_closed())

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` with the running loop's client; the response streams as usual."""
        loop = asyncio.get_running_loop()
        client = self.client_for(loop)
        if loop not in self._closers:
            await self._close_at_shutdown(loop, client)
        try:
            return await client.send(request, stream=True)
        except httpx.ConnectTimeout as exc:
            cause = exc.__cause__
            if isinstance(cause, _AIOHTTP_ERRORS) and not isinstance(cause, TimeoutError):
                # The SDK's aiohttp adapter maps every aiohttp connection error to ConnectTimeout, so a refused
                # or dropped connection would read as "Request timed out."; httpx raises ConnectError for it.
                raise httpx.ConnectError(str(exc), request=request) from cause
            raise

    async def _close_at_shutdown(self, loop: asyncio.AbstractEventLoop, client: httpx.AsyncClient) -> None:
        """Have ``loop`` close ``client`` when it shuts down its async generators (first iterated here, on it)."""
        closer = _closed_at_shutdown(client)
        with self._lock:
            if loop in self._closers:
                return
            self._closers[loop] = closer
        await anext(closer)

    async def aclose(self) -> None:
        """Close the running loop's client (the others belong to other loops)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            client = self._clients.pop(loop, None)
            closer = self._closers.pop(loop, None)
        if closer is not None:
            await closer.aclose()  # closes the client
        elif client is not None:
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
    shared_ssl_context()  # built here, where models are built (off the loop), not by a loop's first request
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


__all__ = ["CONNECTION_LIMITS", "LoopLocalTransport", "loop_client", "loop_local_async_client", "proxies_in_environment",
           "shared_ssl_context"]

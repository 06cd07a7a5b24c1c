"""A real HTTP server on loopback that speaks OpenAI-compatible chat completions.

:class:`WireServer` serves ``GET /v1/models`` and ``POST /v1/chat/completions`` (JSON, and
Server-Sent Events with ``stream: true``) for a set of model ids, each with its own
:class:`~tests.contract.wire_formats.ModelBehaviour` (OpenAI, Qwen3 ``<think>`` inline, vLLM
reasoning parser, llama-cpp-python validation, failures, latency). What each payload looks
like, and where that shape is documented, is in :mod:`tests.contract.wire_formats`.

It is built on the standard library's :class:`http.server.ThreadingHTTPServer` (one thread
per connection, HTTP/1.1 keep-alive, chunked transfer for streams), so concurrent requests
overlap: latency is slept in the request's own thread with no lock held. Connections stay
open between requests, as vLLM, llama.cpp and OpenAI keep them, so a client that reuses a
connection of a closed event loop fails here as it would there; :meth:`WireServer.connections`
says how many requests each connection carried. Every request is
recorded (:class:`RecordedRequest`) and the number in flight per model is tracked
(:meth:`WireServer.max_in_flight`), for assertions by contract tests, benchmarks and load tests.
A client that hangs up before its answer is complete is noticed (during the latency and
between streamed chunks, as servers that abort a request on disconnect do): the request is
recorded with ``client_closed`` and status 499, and its answer is not written::

    with WireServer({"m": ModelBehaviour(latency_s=0.2)}) as server:
        llm = server.chat_model("m")          # a real langchain_openai.ChatOpenAI
        llm.invoke("hi")
        assert server.max_in_flight("m") == 1
"""

from __future__ import annotations

import itertools
import json
import random
import select
import socket
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import urlsplit

from tests.contract.wire_formats import (
    ErrorReply,
    ModelBehaviour,
    check_request,
    completion_payload,
    generate,
    models_payload,
    openai_error,
    stream_chunks,
    usage_payload,
)

if TYPE_CHECKING:
    from langchain_openai import ChatOpenAI

CLIENT_CLOSED = 499
"""The status recorded for a request whose client hung up first (nginx's "client closed request")."""
LATENCY_SLICE_S = 0.01
"""How often a request waiting out its latency checks that its client is still there."""

#: Request headers kept in :attr:`RecordedRequest.headers` (lower-case names).
HEADERS_OF_INTEREST = ("authorization", "content-type", "accept", "user-agent", "x-stainless-retry-count", "idempotency-key")


@dataclass
class RecordedRequest:
    """One request as the server saw it.

    Attributes:
        method: ``GET`` or ``POST``.
        path: the URL path, e.g. ``/v1/chat/completions``.
        model: the body's ``model`` (``None`` for ``GET`` or an unreadable body).
        body: the parsed JSON body, or ``None``.
        headers: the :data:`HEADERS_OF_INTEREST` that were sent.
        arrived: ``time.perf_counter()`` when the request was read.
        finished: ``time.perf_counter()`` when the answer was fully written.
        status: the HTTP status answered (499: the client hung up before the answer was complete).
        client_closed: the client closed the connection before the answer was complete.
        usage: the ``usage`` of the generated answer, sent or not (a streamed answer sends it only
            with ``stream_options.include_usage``); ``None`` when nothing was generated (an error,
            a client that left during the latency).
    """

    method: str
    path: str
    model: str | None
    body: dict[str, Any] | None
    headers: dict[str, str]
    arrived: float
    finished: float | None = None
    status: int | None = None
    client_closed: bool = False
    usage: dict[str, Any] | None = None

    @property
    def retry_count(self) -> int:
        """The openai SDK's ``x-stainless-retry-count`` header: 0 for a first try, n for the n-th retry."""
        return int(self.headers.get("x-stainless-retry-count", "0"))


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256  # load tests open many connections at once

    def __init__(self, wire: WireServer) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.wire = wire

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (a timed-out or closed keep-alive connection) is normal here; anything else is printed."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the openai SDK's httpx pool expects
    disable_nagle_algorithm = True  # else header and body writes wait ~40 ms for a delayed ACK
    server: _HTTPServer
    connection_id: int

    def setup(self) -> None:
        """One handler per connection: count it (its requests are counted in :meth:`WireServer._serve`)."""
        super().setup()
        self.connection_id = self.server.wire._opened()

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: tests read :class:`RecordedRequest` instead of an access log."""

    def do_GET(self) -> None:
        """``GET /v1/models``."""
        self.server.wire._serve(self, "GET")

    def do_POST(self) -> None:
        """``POST /v1/chat/completions``."""
        self.server.wire._serve(self, "POST")

    def client_gone(self) -> bool:
        """Whether the client closed its end of the connection (an EOF is waiting to be read)."""
        poller = select.poll()  # not select.select: a load test's descriptors go past its limit of 1024
        poller.register(self.connection, select.POLLIN)
        if not poller.poll(0):
            return False
        try:
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:  # reset by the peer
            return True

    def wait_unless_gone(self, exchange: _Exchange, seconds: float) -> bool:
        """Sleep ``seconds`` (no lock held), watching the client; ``False`` (recorded) when it hung up."""
        deadline = time.perf_counter() + seconds
        while (left := deadline - time.perf_counter()) > 0:
            if self.client_gone():
                exchange.client_closed()
                self.close_connection = True
                return False
            time.sleep(min(LATENCY_SLICE_S, left))
        return True

    def send_json(self, exchange: _Exchange, status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> None:
        """Answer a JSON body with its ``Content-Length``; the bookkeeping closes before the first byte goes out."""
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        exchange.finish(status)
        self.end_headers()
        self.wfile.write(data)

    def send_stream(self, exchange: _Exchange, events: Iterable[str], interval_s: float = 0.0) -> None:
        """Answer SSE ``data: ...`` events in chunked transfer encoding, then ``data: [DONE]`` [OAI-STREAM].

        The bookkeeping closes before ``[DONE]``, after which the client may return at once.
        """
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for data in events:
                self._send_chunk(f"data: {data}\n\n".encode())
                if interval_s and not self.wait_unless_gone(exchange, interval_s):
                    return
            exchange.finish(200)
            self._send_chunk(b"data: [DONE]\n\n")
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):  # the client stopped reading
            exchange.client_closed()
            self.close_connection = True

    def _send_chunk(self, payload: bytes) -> None:
        self.wfile.write(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")


@dataclass
class _Counters:
    requests: int = 0
    in_flight: int = 0
    max_in_flight: int = 0


@dataclass
class _Exchange:
    """One request being answered; :meth:`finish` stamps its record and leaves the in-flight count, once."""

    lock: threading.Lock
    record: RecordedRequest
    counters: _Counters | None = None
    done: bool = False

    def client_closed(self) -> None:
        """The client hung up before the answer was complete: recorded with status 499."""
        self.record.client_closed = True
        self.finish(CLIENT_CLOSED)

    def finish(self, status: int) -> None:
        with self.lock:
            if self.done:
                return
            self.done = True
            self.record.status, self.record.finished = status, time.perf_counter()
            if self.counters is not None:
                self.counters.in_flight -= 1


class WireServer:
    """A loopback OpenAI-compatible chat completions server with scripted model behaviours.

    Args:
        behaviours: model id -> behaviour; ``GET /v1/models`` lists the ids in this order.
        api_key: when set, requests without ``Authorization: Bearer <api_key>`` get a 401.
        seed: the seed of the random draws of the behaviours' ``error_rates``.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`. It binds 127.0.0.1 on
    a free port; :attr:`base_url` ends in ``/v1``. Unknown model ids get a 404
    ``model_not_found``; other paths a 404.
    """

    def __init__(self, behaviours: Mapping[str, ModelBehaviour] | None = None, *, api_key: str | None = None,
                 seed: int = 0) -> None:
        self.api_key = api_key
        self._random = random.Random(seed)
        self._behaviours: dict[str, ModelBehaviour] = dict(behaviours or {})
        self._lock = threading.Lock()
        self._counters: dict[str | None, _Counters] = {}
        self._records: list[RecordedRequest] = []
        self._connections: dict[int, int] = {}  # connection number -> requests it carried
        self._connection_ids = itertools.count()
        self._ids = itertools.count(1)
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- life cycle ------------------------------------------------------------------------

    def start(self) -> Self:
        """Bind a free loopback port and serve in a background thread; returns ``self``."""
        if self._httpd is None:
            self._httpd = _HTTPServer(self)
            self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket (idempotent)."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._httpd = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port (the server must be started)."""
        if self._httpd is None:
            raise RuntimeError("WireServer is not started")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1``, for ``ChatOpenAI(base_url=...)``."""
        return f"http://127.0.0.1:{self.port}/v1"

    # --- configuration ---------------------------------------------------------------------

    @property
    def model_ids(self) -> list[str]:
        """The served model ids."""
        with self._lock:
            return list(self._behaviours)

    def behaviour(self, model: str) -> ModelBehaviour:
        """The behaviour of ``model``."""
        with self._lock:
            return self._behaviours[model]

    def set_behaviour(self, model: str, behaviour: ModelBehaviour) -> None:
        """Serve ``model`` (new or not) with ``behaviour`` from the next request on; its ``fail_first`` count restarts."""
        with self._lock:
            self._behaviours[model] = behaviour
            self._counters.setdefault(model, _Counters()).requests = 0

    def chat_model(self, model: str, **kwargs: Any) -> ChatOpenAI:
        """A real ``ChatOpenAI`` for ``model`` on this server (``max_retries=0``, ``timeout=10`` unless given)."""
        from langchain_openai import ChatOpenAI

        params: dict[str, Any] = {"model": model, "base_url": self.base_url, "api_key": self.api_key or "x"}
        params.update(max_retries=0, timeout=10.0)
        params.update(kwargs)
        return ChatOpenAI(**params)

    # --- observations ----------------------------------------------------------------------

    def requests(self, model: str | None = None) -> list[RecordedRequest]:
        """Every recorded request in arrival order, or only those whose body named ``model``."""
        with self._lock:
            return [r for r in self._records if model is None or r.model == model]

    def in_flight(self, model: str) -> int:
        """Chat requests for ``model`` being answered now."""
        with self._lock:
            return self._counters.get(model, _Counters()).in_flight

    def max_in_flight(self, model: str) -> int:
        """The most chat requests for ``model`` ever answered at the same time."""
        with self._lock:
            return self._counters.get(model, _Counters()).max_in_flight

    def connections(self) -> list[int]:
        """How many requests each accepted connection carried, in the order they were accepted."""
        with self._lock:
            return list(self._connections.values())

    def reset(self) -> None:
        """Forget the recorded requests, connections and counters (``fail_first`` starts over)."""
        with self._lock:
            self._records.clear()
            self._counters.clear()
            self._connections.clear()

    def _opened(self) -> int:
        """Count a new connection; returns its number."""
        with self._lock:
            number = next(self._connection_ids)
            self._connections[number] = 0
            return number

    # --- serving ---------------------------------------------------------------------------

    def _serve(self, handler: _Handler, method: str) -> None:
        path = urlsplit(handler.path).path.rstrip("/")
        raw = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        body: dict[str, Any] | None = None
        if method == "POST":
            try:
                parsed = json.loads(raw or b"null")
            except json.JSONDecodeError:
                parsed = None
            body = parsed if isinstance(parsed, dict) else None
        model = body.get("model") if body is not None and isinstance(body.get("model"), str) else None
        headers = {k: handler.headers[k] for k in HEADERS_OF_INTEREST if handler.headers.get(k) is not None}
        exchange = _Exchange(self._lock, RecordedRequest(method, path, model, body, headers, time.perf_counter()))
        with self._lock:
            self._records.append(exchange.record)
            if handler.connection_id in self._connections:  # not forgotten by reset()
                self._connections[handler.connection_id] += 1
        try:
            reply = self._route(handler, exchange, method, path, body)
            if reply is not None:
                handler.send_json(exchange, reply.status, reply.body, reply.headers)
        finally:
            exchange.finish(exchange.record.status or 500)

    def _draw_error(self, behaviour: ModelBehaviour) -> int | None:
        """The status one of ``behaviour.error_rates`` picks for this request, or ``None`` (one seeded draw)."""
        if not behaviour.error_rates:
            return None
        with self._lock:
            draw = self._random.random()
        for status, probability in behaviour.error_rates:
            if draw < probability:
                return status
            draw -= probability
        return None

    def _route(self, handler: _Handler, exchange: _Exchange, method: str, path: str, body: dict[str, Any] | None) -> ErrorReply | None:
        """Answer the request, or return the error to answer."""
        if self.api_key is not None and handler.headers.get("Authorization") != f"Bearer {self.api_key}":
            return openai_error(401)
        if method == "GET" and path == "/v1/models":
            handler.send_json(exchange, 200, models_payload(self.model_ids))
            return None
        if path != "/v1/chat/completions" or method != "POST":
            return openai_error(404, message=f"Unknown request URL: {method} {path}.")
        if body is None:
            return openai_error(400, message="We could not parse the JSON body of your request.")
        model = exchange.record.model or ""
        with self._lock:
            behaviour = self._behaviours.get(model)
            if behaviour is None:
                return openai_error(404, model=model)
            counters = exchange.counters = self._counters.setdefault(model, _Counters())
            attempt = counters.requests
            counters.requests += 1
            counters.in_flight += 1
            counters.max_in_flight = max(counters.max_in_flight, counters.in_flight)
        if attempt < len(behaviour.fail_first):
            return openai_error(behaviour.fail_first[attempt], model=model, retry_after=behaviour.retry_after)
        if behaviour.error_status is not None:
            return openai_error(behaviour.error_status, model=model, retry_after=behaviour.retry_after)
        injected = self._draw_error(behaviour)
        if injected is not None:
            return openai_error(injected, model=model, retry_after=behaviour.retry_after)
        error = check_request(behaviour, body)
        if error is not None:
            return error
        latency = behaviour.latency(body)
        if latency and not handler.wait_unless_gone(exchange, latency):
            return None  # in this request's thread, no lock held: requests overlap; a client that left gets nothing
        gen = generate(behaviour, body)
        completion_id = f"chatcmpl-wire-{next(self._ids)}"
        if body.get("stream"):
            chunks = stream_chunks(behaviour, body, gen, model=model, completion_id=completion_id)
            exchange.record.usage = usage_payload(behaviour, body, gen)
            handler.send_stream(exchange, (json.dumps(c) for c in chunks), behaviour.stream_interval_s)
        else:
            payload = completion_payload(behaviour, body, gen, model=model, completion_id=completion_id)
            exchange.record.usage = payload.get("usage")
            handler.send_json(exchange, 200, payload)
        return None

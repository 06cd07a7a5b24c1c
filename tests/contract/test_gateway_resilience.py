"""The SALE gateway under bad conditions, over real HTTP: clients that leave, huge bodies, a flaky pool under load.

The gateway runs under uvicorn on a loopback port (:mod:`tests.contract.gateway_server`),
the pool's agents on the wire server (:mod:`tests.contract.sale_apps`: ``large`` wins each
auction). Each test is bounded: clients have timeouts, and every wait polls against a
deadline. What "nothing leaks" means here, checked after each test's requests:

* the endpoints' concurrency slots are all free again (:func:`sale_graph.llm.endpoint_limiter`);
* the server's event loop runs no task beyond the ones it ran before the requests;
* the gateway's ``sale_gateway_requests_in_flight`` gauge is back to 0;
* the wire server saw every request end (a client that left is recorded ``client_closed``).
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from sale_graph import AgentPool, create_gateway_app
from sale_graph.llm import endpoint_limiter
from tests.contract.gateway_server import GatewayProcess, GatewayServer
from tests.contract.sale_apps import behaviours, chats, pool_of, responder, role_of, write_pool
from tests.contract.wire_formats import ModelBehaviour
from tests.contract.wire_server import CLIENT_CLOSED, WireServer

pytestmark = [pytest.mark.contract, pytest.mark.usefixtures("fresh_detection")]

QUESTION = [{"role": "user", "content": "What is 2 + 3?"}]
ADD_TOOL = {"type": "function", "function": {"name": "add", "parameters": {"type": "object", "properties": {}}}}
"""Offered so that the wire server tells the agent's calls (they carry tools) from the auction's (they never do)."""
LONG_ANSWER = " ".join(f"word{i}" for i in range(200))
"""A streamed answer of 200 tokens: 4 s at 20 ms a chunk, so a test that waits for it to end would notice."""
SETTLE_S = 5.0




def long_agent_answers(model: str, interval_s: float = 0.02, agent_latency_s: float = 0.0) -> ModelBehaviour:
    """``model`` bids and judges as usual; its answers as an agent are :data:`LONG_ANSWER`, streamed a chunk every ``interval_s``."""
    plain = responder(model)

    def respond(request: Mapping[str, Any]) -> str:
        return LONG_ANSWER if role_of(request) == "agent" else plain(request)

    return ModelBehaviour(responder=respond, stream_interval_s=interval_s, latency_s=agent_latency_s)


def settle(check: Callable[[], bool], timeout_s: float = SETTLE_S) -> bool:
    """Poll ``check`` until it holds or ``timeout_s`` passes; whether it held."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def in_flight_gauge(gateway: GatewayServer) -> float:
    text = httpx.get(f"{gateway.url}/metrics", timeout=10).text
    found = re.search(r"^sale_gateway_requests_in_flight (\S+)$", text, re.MULTILINE)
    assert found is not None
    return float(found.group(1))


def new_tasks(gateway: GatewayServer, baseline: set[asyncio.Task[Any]]) -> list[asyncio.Task[Any]]:
    """The tasks on the gateway's loop that were not there at ``baseline``.

    sse-starlette's shutdown watcher is left out: one per event loop, started by the first stream.
    """
    return [t for t in gateway.tasks() if t not in baseline and t.get_coro().__qualname__ != "_shutdown_watcher"]


def assert_nothing_leaks(gateway: GatewayServer, wire: WireServer, pool: AgentPool, baseline: set[asyncio.Task[Any]]) -> None:
    """Every endpoint slot free, no task beyond ``baseline`` on the server's loop, no request in flight anywhere."""
    limiters = [endpoint_limiter(agent) for agent in pool.agents]
    assert settle(lambda: all(limiter.in_use == 0 for limiter in limiters)), [limiter.in_use for limiter in limiters]
    assert settle(lambda: not new_tasks(gateway, baseline)), new_tasks(gateway, baseline)
    assert settle(lambda: all(wire.in_flight(name) == 0 for name in pool.names))
    assert in_flight_gauge(gateway) == 0


def error_shape(body: Any) -> dict[str, Any]:
    """The ``error`` object of an OpenAI-shaped error body (asserting the shape)."""
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"message", "type", "code", "param"} and isinstance(error["message"], str) and error["message"]
    return dict(error)


# --- a client that leaves ------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["sale", "large"])
def test_a_client_that_leaves_mid_stream_ends_the_upstream_request_and_leaks_nothing(model: str) -> None:
    with WireServer({**behaviours(), "large": long_agent_answers("large")}) as wire:
        pool = pool_of(wire, large={"max_concurrency": 1})  # a slot kept by a dead stream would block every later call
        with GatewayServer(create_gateway_app(pool=pool, use_memory=False)) as gateway:
            client = openai.OpenAI(base_url=gateway.base_url, api_key="any", max_retries=0, timeout=30,
                                   default_headers={"x-sale-session": "leaver"})
            client.models.list()
            baseline = set(gateway.tasks())
            stream = client.chat.completions.create(model=model, messages=QUESTION, tools=[ADD_TOOL],  # type: ignore[call-overload]
                                                    stream=True)
            words = [next(stream).choices[0].delta.content for _ in range(5)]
            assert settle(lambda: endpoint_limiter(pool.get("large")).in_use == 1, 1)  # the stream holds the slot
            left = time.perf_counter()
            stream.close()

            [answer] = [r for r in chats(wire, model="large") if role_of(r.body or {}) == "agent"]
            assert settle(lambda: answer.finished is not None)
            assert answer.client_closed and answer.status == CLIENT_CLOSED
            assert (answer.finished or 0) - left < 1.0  # the upstream request ended when the client left, not after 4 s
            assert_nothing_leaks(gateway, wire, pool, baseline)
            # The freed slot serves the next request; a session's next turn goes to its winner without a new auction.
            again = client.chat.completions.with_raw_response.create(model=model, messages=QUESTION, tools=[ADD_TOOL])  # type: ignore[arg-type]
            assert again.parse().choices[0].message.content == LONG_ANSWER
            if model == "sale":
                assert again.headers["x-sale-pinned"] == "true" and len(chats(wire, "bid")) == 2
    assert "".join(w or "" for w in words).strip().startswith("word0")


@pytest.mark.parametrize("stream", [False, True])
def test_a_client_that_leaves_while_the_winner_works_cancels_the_upstream_request(stream: bool) -> None:
    with WireServer({**behaviours(), "large": long_agent_answers("large", agent_latency_s=3.0)}) as wire:
        pool = pool_of(wire)
        with GatewayServer(create_gateway_app(pool=pool, use_memory=False)) as gateway:
            httpx.get(f"{gateway.base_url}/models")
            baseline = set(gateway.tasks())
            body = {"model": "large", "messages": QUESTION, "stream": stream}
            with pytest.raises(httpx.ReadTimeout):
                httpx.post(f"{gateway.base_url}/chat/completions", json=body, timeout=0.5)
            left = time.perf_counter()

            [answer] = chats(wire, model="large")
            assert settle(lambda: answer.finished is not None)
            assert answer.client_closed and (answer.finished or 0) - left < 1.0  # not after its 3 s
            assert_nothing_leaks(gateway, wire, pool, baseline)
            metrics = httpx.get(f"{gateway.url}/metrics").text
    assert 'sale_gateway_errors_total{code="client_closed_request",status="499"} 1.0' in metrics


def test_a_client_that_leaves_during_the_auction_costs_no_answer_and_its_session_keeps_the_pin() -> None:
    slow_bids = {m: ModelBehaviour(responder=responder(m), latency_s=0.6) for m in ("small", "large")}
    with WireServer({**behaviours(), **slow_bids}) as wire:
        pool = pool_of(wire)
        with GatewayServer(create_gateway_app(pool=pool, use_memory=False)) as gateway:
            client = openai.OpenAI(base_url=gateway.base_url, api_key="any", max_retries=0,
                                   default_headers={"x-sale-session": "impatient"})
            client.models.list()
            baseline = set(gateway.tasks())
            with pytest.raises(openai.APITimeoutError):
                client.chat.completions.create(model="sale", messages=QUESTION, timeout=0.3)
            # The auction runs to its end (its bids are paid for) and pins the session; nobody asks the winner.
            assert settle(lambda: len(chats(wire, "jury")) == 4 and all(r.finished for r in chats(wire)))
            assert_nothing_leaks(gateway, wire, pool, baseline)
            assert [r for r in chats(wire) if role_of(r.body or {}) == "agent"] == []
            retry = client.chat.completions.with_raw_response.create(model="sale", messages=QUESTION)
            metrics = httpx.get(f"{gateway.url}/metrics").text
    assert retry.headers["x-sale-pinned"] == "true" and retry.parse().choices[0].message.content == "Final Answer: 5"
    assert len(chats(wire, "bid")) == 2  # the retry found the pin: one auction in all
    assert 'sale_gateway_errors_total{code="client_closed_request",status="499"} 1.0' in metrics


# --- a body of 10 MB -----------------------------------------------------------------------------


def test_a_10_mb_body_is_a_413_in_openais_shape_and_the_gateway_carries_on() -> None:
    big = {"model": "sale", "messages": [{"role": "user", "content": "x" * (10 * 1024 * 1024)}]}
    raw = json.dumps(big).encode()

    def chunks() -> Iterator[bytes]:  # no Content-Length: the gateway counts the bytes as they come
        for start in range(0, len(raw), 256 * 1024):
            yield raw[start:start + 256 * 1024]

    with WireServer(behaviours()) as wire:
        pool = pool_of(wire)
        with GatewayServer(create_gateway_app(pool=pool, use_memory=False)) as gateway:
            baseline = set(gateway.tasks())
            url, headers = f"{gateway.base_url}/chat/completions", {"content-type": "application/json"}
            declared = httpx.post(url, content=raw, headers=headers, timeout=30)
            streamed = httpx.post(url, content=chunks(), headers=headers, timeout=30)
            with pytest.raises(openai.APIStatusError) as err:
                openai.OpenAI(base_url=gateway.base_url, api_key="any", max_retries=0).chat.completions.create(**big)
            after = openai.OpenAI(base_url=gateway.base_url, api_key="any", max_retries=0).chat.completions.create(
                model="sale", messages=QUESTION)  # type: ignore[arg-type]
            assert_nothing_leaks(gateway, wire, pool, baseline)
            metrics = httpx.get(f"{gateway.url}/metrics").text
    for response in (declared, streamed):
        assert response.status_code == 413
        error = error_shape(response.json())
        assert error["code"] == "request_too_large" and error["type"] == "invalid_request_error"
        assert "8388608 bytes" in error["message"]
    assert err.value.status_code == 413 and "8388608 bytes" in err.value.message
    assert after.choices[0].message.content == "Final Answer: 5"
    assert len(chats(wire, "bid")) == 2  # only the last request reached the pool
    assert 'sale_gateway_errors_total{code="request_too_large",status="413"} 3.0' in metrics


# --- idle connections ----------------------------------------------------------------------------


def _http_response(conn: socket.socket) -> bytes:
    """One HTTP/1.1 response read off ``conn`` (headers and a ``Content-Length`` body); ``b""`` when it was closed."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def test_sale_gateway_keeps_an_idle_connection_open_longer_than_clients_keep_theirs(tmp_path: Path) -> None:
    with WireServer(behaviours()) as wire, GatewayProcess(write_pool(tmp_path / "pool.toml", wire)) as gateway:
        request = f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{gateway.port}\r\n\r\n".encode()
        with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as conn:
            conn.sendall(request)
            first = _http_response(conn)
            # httpx and the openai SDK drop a connection idle for 5 s; a server that closes it at the same
            # moment (uvicorn's default) races their next request into a "Connection error".
            time.sleep(5.5)
            conn.sendall(request)
            second = _http_response(conn)
    assert first.startswith(b"HTTP/1.1 200") and second.startswith(b"HTTP/1.1 200"), second


# --- 200 concurrent requests on a flaky pool ------------------------------------------------------

SESSIONS = 40
FIRST_TURN_COPIES = 3
LONE_TURNS = 80
LATER_TURNS = 2
REQUEST_TIMEOUT_S = 60.0


async def _one(client: openai.AsyncOpenAI, label: str, *, session: str | None = None, stream: bool = False,
               text: str = "What is 2 + 3?") -> tuple[str, str | None, Any]:
    """One request: ``(label, session, outcome)``, the outcome being ``(headers, answer text)`` or the error raised."""
    headers = {"x-sale-session": session} if session else {}
    messages = [{"role": "user", "content": text}]
    try:
        async with asyncio.timeout(REQUEST_TIMEOUT_S):
            if stream:
                async with client.chat.completions.with_streaming_response.create(
                        model="sale", messages=messages, stream=True, extra_headers=headers) as response:  # type: ignore[call-overload]
                    parts = [c.choices[0].delta.content or "" async for c in await response.parse() if c.choices]
                    return label, session, (dict(response.headers), "".join(parts))
            raw = await client.chat.completions.with_raw_response.create(model="sale", messages=messages,  # type: ignore[arg-type]
                                                                         extra_headers=headers)
            return label, session, (dict(raw.headers), raw.parse().choices[0].message.content)
    except Exception as exc:  # noqa: BLE001  # every failure is an outcome the test sorts and checks
        return label, session, exc


def test_200_concurrent_requests_on_a_pool_with_429s_and_500s_all_end_and_no_session_loses_its_pin() -> None:
    flaky = {m: ModelBehaviour(responder=responder(m), latency_s=0.05, error_rates=((429, 0.10), (500, 0.05)),
                               retry_after="0") for m in ("small", "large")}
    with WireServer(flaky, seed=21) as wire:
        pool = pool_of(wire, small={"max_retries": 2}, large={"max_retries": 2})
        with GatewayServer(create_gateway_app(pool=pool, use_memory=False)) as gateway:
            httpx.get(f"{gateway.base_url}/models")
            baseline = set(gateway.tasks())

            async def main() -> tuple[list[Any], list[Any]]:
                limits = httpx.Limits(max_connections=400, max_keepalive_connections=400)
                async with openai.AsyncOpenAI(base_url=gateway.base_url, api_key="any", max_retries=0,
                                              timeout=REQUEST_TIMEOUT_S,
                                              http_client=httpx.AsyncClient(limits=limits)) as client:
                    first = [_one(client, "first", session=f"s{i}", stream=(i % 4 == 0), text=f"What is {i} + 3?")
                             for i in range(SESSIONS) for _ in range(FIRST_TURN_COPIES)]
                    lone = [_one(client, "lone", stream=(i % 4 == 1), text=f"What is {i} + 4?") for i in range(LONE_TURNS)]
                    wave = await asyncio.gather(*first, *lone)

                    async def later_turns(i: int) -> list[Any]:
                        return [await _one(client, "later", session=f"s{i}", text=f"And {i} + {t}?") for t in range(LATER_TURNS)]

                    return list(wave), [o for turns in await asyncio.gather(*(later_turns(i) for i in range(SESSIONS)))
                                        for o in turns]

            start = time.perf_counter()
            wave, later = asyncio.run(main())
            elapsed = time.perf_counter() - start
            assert_nothing_leaks(gateway, wire, pool, baseline)

    assert len(wave) == SESSIONS * FIRST_TURN_COPIES + LONE_TURNS == 200 and elapsed < REQUEST_TIMEOUT_S
    statuses: Counter[int] = Counter()
    winners: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for label, session, outcome in [*wave, *later]:
        if isinstance(outcome, openai.APIStatusError):  # an OpenAI-shaped error with a status that says what failed
            error = error_shape(outcome.body if set(outcome.body or {}) == {"error"} else {"error": outcome.body})
            statuses[outcome.status_code] += 1
            assert (outcome.status_code, error["code"]) in {(429, "rate_limit_exceeded"), (502, "upstream_error"),
                                                           (503, "sale_auction_failed")}, (label, error)
            continue
        assert not isinstance(outcome, BaseException), (label, session, repr(outcome))  # no hang, no broken connection
        headers, text = outcome
        assert text == "Final Answer: 5", (label, text)
        statuses[200] += 1
        if session is not None:
            winners[session].add((headers["x-sale-auction-id"], headers["x-sale-winner"]))
    # The failures were real: the wire server answered rate limits and server errors, and the gateway retried them.
    wire_statuses = Counter(r.status for r in chats(wire))
    assert wire_statuses[429] >= 20 and wire_statuses[500] >= 10, wire_statuses
    assert statuses[200] >= 0.8 * (200 + SESSIONS * LATER_TURNS), statuses
    # Every session that got an answer got it from one auction's winner, first turn and later ones alike.
    assert len(winners) >= SESSIONS * 0.8
    assert {s: w for s, w in winners.items() if len(w) != 1} == {}

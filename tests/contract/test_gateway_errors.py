"""The SALE gateway's errors over real HTTP: each status with OpenAI's error shape, the fallback, and keys kept secret.

Every error body is ``{"error": {"message", "type", "code", "param"}}``; the ``openai`` SDK
raises its own class for each status. The winner's failures are made by the wire server
(:func:`tests.contract.sale_apps.fail_agent_calls`: its agent calls fail, its bids and
votes do not); the pool retries nothing (``max_retries = 0``) unless a test says so.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sale_graph import AgentPool, AgentSpec, create_gateway_app
from tests.contract.gateway_server import GatewayServer
from tests.contract.sale_apps import behaviours, chats, fail_agent_calls, pool_of
from tests.contract.wire_server import WireServer

pytestmark = [pytest.mark.contract, pytest.mark.usefixtures("fresh_detection")]

MESSAGES = [{"role": "user", "content": "What is 2 + 3?"}]



@pytest.fixture
def wire() -> Iterator[WireServer]:
    with WireServer(behaviours()) as server:
        yield server



@pytest.fixture
def gateway(wire: WireServer) -> Iterator[GatewayServer]:
    with GatewayServer(create_gateway_app(pool=pool_of(wire), use_memory=False)) as server:
        yield server


def post(gateway: GatewayServer, body: Any = None, *, content: bytes | None = None, **headers: str) -> httpx.Response:
    if content is None:
        return httpx.post(f"{gateway.base_url}/chat/completions", json=body, headers=headers, timeout=30)
    return httpx.post(f"{gateway.base_url}/chat/completions", content=content, headers=headers, timeout=30)


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    """The error object of an OpenAI-shaped error answer with ``status``."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "code", "param"}
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return dict(body["error"])


# --- 400: the field at fault ---------------------------------------------------------------------


@pytest.mark.parametrize(("body", "param", "code", "words"), [
    ({"model": "sale"}, "messages", "invalid_value", "non-empty array"),
    ({"model": "sale", "messages": []}, "messages", "invalid_value", "non-empty array"),
    ({"messages": MESSAGES}, "model", "invalid_value", "'model' is required"),
    ({"model": "gpt-5", "messages": MESSAGES}, "model", "model_not_found", "'sale', 'small', 'large'"),
    ({"model": "sale", "messages": [{"content": "hi"}]}, "messages[0].role", "invalid_value", "role must be one of"),
    ({"model": "sale", "messages": MESSAGES, "n": 2}, "n", "invalid_value", "'n' must be 1"),
    ({"model": "sale", "messages": MESSAGES, "stream": "yes"}, "stream", "invalid_value", "true or false"),
    ({"model": "sale", "messages": MESSAGES, "max_tokens": 0}, "max_tokens", "invalid_value", "positive integer"),
    ({"model": "sale", "messages": MESSAGES, "sale": {"use_memmory": False}}, "sale.use_memmory", "unknown_sale_option",
     "did you mean 'use_memory'?"),
    ({"model": "sale", "messages": MESSAGES, "sale": {"pool": "/etc/other.toml"}}, "sale.pool", "unknown_sale_option",
     "set by whoever runs the gateway"),
    ({"model": "sale", "messages": MESSAGES, "sale": {"jury_quorum": 2}}, "sale.jury_quorum", "invalid_value", "jury_quorum"),
    ({"model": "sale", "messages": [{"role": "system", "content": "Be brief."}]}, "messages", "invalid_value",
     "no user message"),
])
def test_bad_input_is_a_400_naming_the_field(gateway: GatewayServer, wire: WireServer, body: dict[str, Any], param: str,
                                             code: str, words: str) -> None:
    error = error_of(post(gateway, body), 400)
    assert error["param"] == param and error["code"] == code and error["type"] == "invalid_request_error"
    assert words in error["message"]
    assert chats(wire) == []  # nothing was paid for


def test_a_body_that_is_not_json_is_a_400(gateway: GatewayServer) -> None:
    error = error_of(post(gateway, content=b"{not json", **{"content-type": "application/json"}), 400)
    assert error["code"] == "invalid_json" and error["param"] is None and "not valid JSON" in error["message"]


def test_the_sdk_raises_its_bad_request_error_with_the_gateways_message(gateway: GatewayServer) -> None:
    client = openai.OpenAI(base_url=gateway.base_url, api_key="any", max_retries=0)
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="gpt-5", messages=MESSAGES)  # type: ignore[arg-type]
    assert err.value.code == "model_not_found" and err.value.param == "model"


def test_a_body_over_the_limit_is_a_413(wire: WireServer) -> None:
    with GatewayServer(create_gateway_app(pool=pool_of(wire), use_memory=False, max_body_bytes=2048)) as gateway:
        error = error_of(post(gateway, {"model": "sale", "messages": [{"role": "user", "content": "x" * 4096}]}), 413)
    assert error["code"] == "request_too_large" and "2048 bytes" in error["message"]
    assert chats(wire) == []


def test_an_unknown_route_is_an_openai_shaped_404(gateway: GatewayServer) -> None:
    error = error_of(httpx.post(f"{gateway.base_url}/embeddings", json={}), 404)
    assert error["code"] == "not_found" and "/v1/embeddings" in error["message"]


# --- 401: client keys ----------------------------------------------------------------------------


def test_a_gateway_with_keys_refuses_requests_without_one_or_with_a_wrong_one(
    wire: WireServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATEWAY_KEYS", "key-one, key-two")
    with GatewayServer(create_gateway_app(pool=pool_of(wire), use_memory=False, api_keys_env="GATEWAY_KEYS")) as gateway:
        missing = error_of(post(gateway, {"model": "sale", "messages": MESSAGES}), 401)
        wrong = error_of(post(gateway, {"model": "sale", "messages": MESSAGES}, authorization="Bearer key-three"), 401)
        models = httpx.get(f"{gateway.base_url}/models")
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=gateway.base_url, api_key="nope", max_retries=0).models.list()
        ok = openai.OpenAI(base_url=gateway.base_url, api_key="key-two", max_retries=0).chat.completions.create(
            model="sale", messages=MESSAGES)  # type: ignore[arg-type]
    assert missing["code"] == wrong["code"] == "invalid_api_key" and "Authorization: Bearer" in missing["message"]
    assert models.status_code == 401 and ok.choices[0].message.content == "Final Answer: 5"
    assert len(chats(wire, "bid")) == 2  # only the request with a good key reached the pool


def test_a_keys_variable_that_holds_no_key_stops_the_gateway_at_start(wire: WireServer, monkeypatch: pytest.MonkeyPatch) -> None:
    from sale_graph import SaleError

    monkeypatch.delenv("NO_SUCH_KEYS", raising=False)
    with pytest.raises(SaleError, match="NO_SUCH_KEYS is not set"):
        create_gateway_app(pool=pool_of(wire), api_keys_env="NO_SUCH_KEYS")


# --- the winner fails: fallback, 502, 429, 400 ---------------------------------------------------


def test_a_failing_winner_falls_back_to_the_runner_up_and_says_so(
    gateway: GatewayServer, wire: WireServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    fail_agent_calls(monkeypatch, "large", 500)
    raw = openai.OpenAI(base_url=gateway.base_url, api_key="any", max_retries=0).chat.completions.with_raw_response.create(
        model="sale", messages=MESSAGES)  # type: ignore[arg-type]

    assert raw.headers["x-sale-winner"] == "large" and raw.headers["x-sale-fallback"] == "small"
    sale = raw.parse().model_extra["sale"]  # type: ignore[index]
    assert sale["answered_by"] == "small" and sale["fallback"]["from"] == "large" and "HTTP 500" in sale["fallback"]["reason"]
    assert [r.model for r in chats(wire, "agent")] == ["large", "small"]
    assert sale["ledger"][-1]["agent"] == "small"
    metrics = httpx.get(f"{gateway.url}/metrics").text
    assert 'sale_gateway_fallbacks_total{from_agent="large",to_agent="small"} 1.0' in metrics


def test_a_failing_winner_with_no_fallback_allowed_is_a_502(
    gateway: GatewayServer, wire: WireServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    fail_agent_calls(monkeypatch, "large", 500)
    response = post(gateway, {"model": "sale", "messages": MESSAGES, "sale": {"on_execution_error": "raise"}})

    error = error_of(response, 502)
    assert error["code"] == "upstream_error" and error["type"] == "server_error"
    assert "agent 'large'" in error["message"] and "HTTP 500" in error["message"]
    assert response.headers["x-sale-winner"] == "large" and response.headers["x-sale-auction-id"]
    assert [r.model for r in chats(wire, "agent")] == ["large"]


def test_the_sdks_retry_of_a_failed_turn_without_a_session_is_answered_by_its_auction_not_a_new_one(
    gateway: GatewayServer, wire: WireServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    fail_agent_calls(monkeypatch, "large", 500, times=1)  # the winner's first answer fails: a 502, which the SDK retries
    client = openai.OpenAI(base_url=gateway.base_url, api_key="any", max_retries=1)
    raw = client.chat.completions.with_raw_response.create(
        model="sale", messages=MESSAGES, extra_body={"sale": {"on_execution_error": "raise"}})  # type: ignore[arg-type]

    assert raw.retries_taken == 1 and raw.headers["x-sale-pinned"] == "true" and raw.headers["x-sale-winner"] == "large"
    assert raw.headers["x-sale-auction-tokens"] == "0"  # the retry paid for no auction
    sale = raw.parse().model_extra["sale"]  # type: ignore[index]
    assert "the client's retry 1 of this turn (x-stainless-retry-count)" in " ".join(sale["notes"])
    assert len(chats(wire, "bid")) == 2 and [r.model for r in chats(wire, "agent")] == ["large", "large"]
    # The same question sent afresh (not a retry) is a new turn: a new auction.
    again = client.chat.completions.with_raw_response.create(model="sale", messages=MESSAGES)  # type: ignore[arg-type]
    assert again.headers["x-sale-pinned"] == "false" and again.headers["x-sale-auction-id"] != raw.headers["x-sale-auction-id"]
    assert len(chats(wire, "bid")) == 4


def test_a_winner_that_keeps_rate_limiting_after_its_retries_is_a_429_with_retry_after(
    wire: WireServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    fail_agent_calls(monkeypatch, "large", 429, retry_after="0")
    fail_agent_calls(monkeypatch, "small", 429, retry_after="0")
    pool = pool_of(wire, large={"max_retries": 2}, small={"max_retries": 1})
    with GatewayServer(create_gateway_app(pool=pool, use_memory=False)) as gateway:
        response = post(gateway, {"model": "sale", "messages": MESSAGES})
        with pytest.raises(openai.RateLimitError):
            openai.OpenAI(base_url=gateway.base_url, api_key="any", max_retries=0).chat.completions.create(
                model="sale", messages=MESSAGES)  # type: ignore[arg-type]

    error = error_of(response, 429)
    assert error["code"] == "rate_limit_exceeded" and error["type"] == "rate_limit_error"
    assert response.headers["retry-after"] == "1"
    assert "so did the runner-up's" in error["message"]
    # Each endpoint was retried by its own policy before the gateway gave up: 3 tries of large, 2 of small.
    assert [r.model for r in chats(wire, "agent")][:5] == ["large"] * 3 + ["small"] * 2


@pytest.mark.parametrize("stream", [False, True])
def test_an_endpoint_that_cannot_be_reached_is_retried_by_its_policy_then_a_502(wire: WireServer, stream: bool) -> None:
    with socket.socket() as closed:  # a port that was free a moment ago: nothing listens there
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    gone = AgentSpec(name="gone", model="gone", base_url=f"http://127.0.0.1:{port}/v1", price_input=1, price_output=1,
                     max_retries=1)
    pool = AgentPool((*pool_of(wire).agents, gone), source="gateway contract pool")
    with GatewayServer(create_gateway_app(pool=pool, use_memory=False)) as gateway:
        start = time.perf_counter()
        response = post(gateway, {"model": "gone", "messages": MESSAGES, "stream": stream})
        elapsed = time.perf_counter() - start
    error = error_of(response, 502)
    assert error["code"] == "upstream_error" and "agent 'gone'" in error["message"] and "ConnectError" in error["message"]
    assert elapsed >= 0.35  # one retry after the policy's backoff (0.5 s x jitter in [0.75, 1])


def test_a_request_the_winner_refuses_is_a_400_with_its_reason(
    gateway: GatewayServer, wire: WireServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    fail_agent_calls(monkeypatch, "large", 400)
    error = error_of(post(gateway, {"model": "sale", "messages": MESSAGES, "sale": {"on_execution_error": "raise"}}), 400)
    assert error["code"] == "upstream_rejected_request" and "Invalid request" in error["message"]


# --- 503: the auction cannot decide --------------------------------------------------------------


def test_an_auction_below_its_quorum_is_a_503_sale_auction_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    with WireServer(behaviours(jury=lambda _: "I like this plan.")) as wire:
        with GatewayServer(create_gateway_app(pool=pool_of(wire), use_memory=False)) as gateway:
            response = post(gateway, {"model": "sale", "messages": MESSAGES})
            with pytest.raises(openai.InternalServerError) as err:
                openai.OpenAI(base_url=gateway.base_url, api_key="any", max_retries=0).chat.completions.create(
                    model="sale", messages=MESSAGES)  # type: ignore[arg-type]
            metrics = httpx.get(f"{gateway.url}/metrics").text
        error = error_of(response, 503)
        assert error["code"] == "sale_auction_failed" and error["type"] == "server_error"
        assert "jury quorum not met" in error["message"] and response.headers["x-sale-auction-id"]
        assert err.value.status_code == 503
        assert chats(wire, "agent") == []  # nobody answered in the auction's place
    assert 'sale_gateway_auctions_total{result="failed"} 2.0' in metrics
    assert 'sale_gateway_errors_total{code="sale_auction_failed",status="503"} 2.0' in metrics


def test_the_requests_that_wait_for_a_sessions_failed_first_auction_share_its_failure_not_run_their_own() -> None:
    lock, jury_calls = threading.Lock(), [0]

    def jury(text: str) -> str:  # the first auction's four votes carry no score: below quorum; later ones are fine
        with lock:
            jury_calls[0] += 1
            first = jury_calls[0] <= 4
        return "I like this plan." if first else ("SCORE: 5" if "CAREFUL" in text else "SCORE: 1")

    with WireServer(behaviours(jury=jury, latency_s=0.2)) as wire:
        with GatewayServer(create_gateway_app(pool=pool_of(wire), use_memory=False)) as gateway:
            async def first_turns() -> list[httpx.Response]:
                async with httpx.AsyncClient(timeout=30) as client:
                    return await asyncio.gather(*(client.post(
                        f"{gateway.base_url}/chat/completions", json={"model": "sale", "messages": MESSAGES},
                        headers={"x-sale-session": "unlucky"}) for _ in range(3)))

            failed = asyncio.run(first_turns())
            client = openai.OpenAI(base_url=gateway.base_url, api_key="any", max_retries=0,
                                   default_headers={"x-sale-session": "unlucky"})
            retried = [client.chat.completions.with_raw_response.create(model="sale", messages=MESSAGES)  # type: ignore[arg-type]
                       for _ in range(3)]

    errors = [error_of(r, 503) for r in failed]
    assert {e["code"] for e in errors} == {"sale_auction_failed"}
    assert len({r.headers["x-sale-auction-id"] for r in failed}) == 1  # one auction, its failure shared
    assert sum("which this request waited for" in e["message"] for e in errors) == 2
    # The next request ran the session's auction and pinned it; the later ones kept that pin.
    assert [r.headers["x-sale-pinned"] for r in retried] == ["false", "true", "true"]
    assert len({(r.headers["x-sale-auction-id"], r.headers["x-sale-winner"]) for r in retried}) == 1
    assert len(chats(wire, "bid")) == 4  # two auctions in all: the failed one and the pinned one


# --- upstream keys never show ---------------------------------------------------------------------


def test_upstream_keys_never_appear_in_errors_headers_or_logs(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "sk-upstream-very-secret-0123456789"
    monkeypatch.setenv("UPSTREAM_KEY", secret)

    async def echo(request: Request) -> JSONResponse:  # an endpoint that echoes the key it was sent, as some do
        key = request.headers.get("authorization", "")
        return JSONResponse({"error": {"message": f"overloaded, key {key}", "type": "server_error"}}, status_code=500)

    upstream = Starlette(routes=[Route("/v1/chat/completions", echo, methods=["POST"])])
    with GatewayServer(upstream) as echoing:
        pool = AgentPool((AgentSpec(name="echo", model="echo", base_url=echoing.base_url, price_input=1, price_output=1,
                                    api_key_env="UPSTREAM_KEY", max_retries=0),), source="echo pool")
        with caplog.at_level(logging.DEBUG), GatewayServer(create_gateway_app(pool=pool, use_memory=False)) as gateway:
            response = post(gateway, {"model": "echo", "messages": MESSAGES})
            metrics = httpx.get(f"{gateway.url}/metrics").text

    error = error_of(response, 502)
    assert "[redacted]" in error["message"] and "overloaded" in error["message"]
    everything = response.text + str(dict(response.headers)) + caplog.text + metrics
    assert secret not in everything

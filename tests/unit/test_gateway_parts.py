"""The gateway's parts without a server: pins and their idle expiry, the forwarded body, the turn key, redaction."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from sale_graph.errors import ContextError
from sale_graph.integrations.gateway import InProcessSessions, Pin
from sale_graph.integrations.gateway.chat import Decision, turn_key
from sale_graph.integrations.gateway.core import build_gateway
from sale_graph.integrations.gateway.keys import ClientKeys, Redactor
from sale_graph.integrations.gateway.request import ChatRequest, parse_chat
from sale_graph.integrations.gateway.upstream import http, request_body, retry_error, with_strategy
from sale_graph.llm.retries import is_retryable
from sale_graph.pool import AgentSpec
from tests.fakes import pool_of

AGENT = AgentSpec(name="a", model="m-1", base_url="http://127.0.0.1:9/v1", price_input=1.0, price_output=2.0, max_tokens=100,
                  token_limit_field="max_completion_tokens", extra_body={"top_k": 5, "chat_template_kwargs": {"x": 1}},
                  execute_extra_body={"chat_template_kwargs": {"enable_thinking": True}})


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def pin(agent: str = "a", auction: str = "x") -> Pin:
    return Pin(auction_id=auction, agent=agent, strategy="1. do it", created=1.0)


def test_a_pin_lives_while_it_is_used_and_expires_after_its_idle_time() -> None:
    clock = Clock()
    store = InProcessSessions(10.0, clock=clock)

    async def scenario() -> list[Any]:
        await store.put("s", pin())
        clock.now = 9.0
        used = await store.get("s")  # restarts the idle time
        clock.now = 18.0
        still = await store.get("s")
        clock.now = 28.5
        gone = await store.get("s")
        return [used, still, gone, await store.count()]

    used, still, gone, count = asyncio.run(scenario())
    assert used == still == pin() and gone is None and count == 0


def test_the_store_keeps_at_most_max_pins_dropping_the_least_recently_used() -> None:
    store = InProcessSessions(60.0, max_pins=2, clock=Clock())

    async def scenario() -> list[Pin | None]:
        await store.put("a", pin(auction="1"))
        await store.put("b", pin(auction="2"))
        await store.get("a")
        await store.put("c", pin(auction="3"))
        return [await store.get(k) for k in ("a", "b", "c")]

    assert [p.auction_id if p else None for p in asyncio.run(scenario())] == ["1", None, "3"]


def test_a_pin_round_trips_through_json() -> None:
    original = Pin("x", "a", "plan", runner_up="b", runner_up_strategy="other", summary={"margin": 0.5})
    assert Pin.from_dict(json.loads(json.dumps(original.to_dict()))) == original


def test_the_idle_time_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive number of seconds"):
        InProcessSessions(0)


def chat(**body: Any) -> ChatRequest:
    body = {"model": "sale", "messages": [{"role": "user", "content": "hi"}], **body}
    return parse_chat(json.dumps(body).encode(), {}, ["sale", "a"])


def test_the_forwarded_body_keeps_the_clients_fields_over_the_pools_and_caps_tokens_in_the_agents_field() -> None:
    request = chat(temperature=0.7, max_tokens=500, top_k=9, chat_template_kwargs={"y": 2}, sale={"refine": False}, user="u")
    body = request_body(AGENT, request, None)

    assert body["model"] == "m-1" and body["temperature"] == 0.7 and body["user"] == "u"
    assert body["max_completion_tokens"] == 100 and "max_tokens" not in body  # at most the agent's max_tokens
    assert body["top_k"] == 9  # the client's value over the pool's
    assert body["chat_template_kwargs"] == {"x": 1, "enable_thinking": True, "y": 2}  # nested fields merged
    assert "sale" not in body and body["messages"] == [{"role": "user", "content": "hi"}]
    assert request.options == {"refine": False}


def test_a_stream_always_asks_for_its_usage_chunk() -> None:
    request = chat(stream=True)
    assert request.stream and not request.include_usage
    assert request_body(AGENT, request, None)["stream_options"] == {"include_usage": True}


def test_the_forwarding_client_is_httpx2s_and_its_transport_failures_reach_the_retry_policy_as_httpxs() -> None:
    import httpx

    pytest.importorskip("httpx2", reason="the openai SDK before version 3 brings httpx only")
    assert http.__name__ == "httpx2"  # its pool assigns a request in one pass (httpx's rescans every connection)
    for failure in (http.ConnectError("refused"), http.ReadTimeout("slow"), http.RemoteProtocolError("cut")):
        seen = retry_error(failure)
        assert type(seen).__name__ == type(failure).__name__ and isinstance(seen, httpx.TransportError)
        assert is_retryable(seen) and not is_retryable(failure)  # unwrapped, the policy would not retry it
    other = ValueError("not a transport failure")
    assert retry_error(other) is other


def test_the_strategy_joins_the_leading_system_message_or_comes_first() -> None:
    user = {"role": "user", "content": "hi"}
    assert with_strategy([user], "NOTE") == [{"role": "system", "content": "NOTE"}, user]
    assert with_strategy([{"role": "system", "content": "Be brief."}, user], "NOTE")[0] == {
        "role": "system", "content": "Be brief.\n\nNOTE"}
    parts = with_strategy([{"role": "developer", "content": [{"type": "text", "text": "Rules."}]}, user], "NOTE")[0]
    assert parts["role"] == "developer" and parts["content"][-1] == {"type": "text", "text": "\n\nNOTE"}


def test_the_turn_key_is_the_conversation_up_to_its_last_human_message() -> None:
    turn = [{"role": "system", "content": "S"}, {"role": "user", "content": "What is 2 + 3?"}]
    called = [*turn, {"role": "assistant", "content": None, "tool_calls": [{"id": "c1"}]},
              {"role": "tool", "tool_call_id": "c1", "content": "5"}]
    assert turn_key("k", turn) == turn_key("k", called) is not None
    assert turn_key("other-client", turn) != turn_key("k", turn)
    assert turn_key("k", [*called, {"role": "user", "content": "And 3 + 4?"}]) != turn_key("k", turn)
    assert turn_key("k", [{"role": "system", "content": "S"}]) is None


def test_pinned_decisions_cost_nothing_in_the_headers() -> None:
    headers = Decision("pinned", "a", pin()).headers()
    assert headers == {"x-sale-auction-id": "x", "x-sale-winner": "a", "x-sale-pinned": "true",
                       "x-sale-auction-cost": "0.00000000", "x-sale-auction-tokens": "0"}
    assert Decision("direct", "a").headers() == {}


def test_the_redactor_hides_every_secret_and_short_values_are_left_alone() -> None:
    redact = Redactor(["sk-abc-123", "sk-abc-123-longer", "ab"])
    assert redact("keys sk-abc-123-longer and sk-abc-123, ab") == "keys [redacted] and [redacted], ab"
    assert Redactor([])("nothing") == "nothing"


def test_client_keys_accept_a_bearer_key_and_hash_it_into_a_client_id() -> None:
    keys = ClientKeys(["k1", "k2"])
    first, second = keys.check({"authorization": "Bearer k1"}), keys.check({"authorization": "Bearer k2"})
    assert first and second and first != second and "k1" not in first
    assert ClientKeys().check({}) == ""


@pytest.mark.parametrize(("setting", "why"), [
    ({"execute_max_steps": 2}, "the gateway only routes"),
    ({"search": {"backend": "local"}}, "the gateway only routes"),
    ({"auction_per": "thread"}, "a session .* pins a conversation"),
    ({"approve_before_execute": True}, "a request cannot pause for a human's approval"),
])
def test_the_gateway_refuses_settings_it_would_ignore(setting: dict[str, Any], why: str) -> None:
    (name,) = setting
    with pytest.raises(ContextError, match=f"create_gateway_app setting '{name}' has no effect: {why}"):
        build_gateway(pool=pool_of(("small", 0.05), ("large", 0.36)), settings={"use_memory": False, **setting})


def test_a_gateway_worker_freezes_its_startup_objects_and_the_library_does_not(monkeypatch: pytest.MonkeyPatch) -> None:
    """``sale gateway``'s own processes gc.freeze() once the app is built; building the app alone freezes nothing."""
    import gc

    import sale_graph.integrations.gateway.asgi as asgi
    from sale_graph.cli import gateway as command
    from sale_graph.integrations.gateway import create_gateway_app

    gc.unfreeze()
    try:
        create_gateway_app(pool=pool_of(("a", 1.0)), use_memory=False)
        assert gc.get_freeze_count() == 0
        built: list[object] = []
        monkeypatch.setattr(asgi, "app_from_env", lambda: built.append(object()) or built[0])
        assert command.worker_app() is built[0] and gc.get_freeze_count() > 0
        assert command.FACTORY == "sale_graph.cli.gateway:worker_app"
    finally:
        gc.unfreeze()

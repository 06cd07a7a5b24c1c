"""The SALE gateway driven by real clients over real HTTP: the ``openai`` SDK, ``ChatOpenAI``, ``create_agent``.

The gateway (``create_gateway_app``) runs under uvicorn on a loopback port
(:mod:`tests.contract.gateway_server`); the pool's agents are the wire server's ``small``
(cheap, a one-step plan) and ``large`` (ten times dearer, a careful plan the jury scores
5 against 1), so ``large`` wins each auction (:mod:`tests.contract.sale_apps`). Every
request the gateway forwards is seen by the wire server: which model got it, with which
system message and tools.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_openai import ChatOpenAI

from sale_graph import AuctionMemory, create_gateway_app
from tests.contract.gateway_server import GatewayServer
from tests.contract.sale_apps import (
    LARGE_PLAN,
    MIDDLEWARE_NOTE,
    SMALL_PLAN,
    add,
    behaviours,
    chats,
    native_tool_calls,
    pool_of,
)
from tests.contract.wire_formats import ModelBehaviour, count_tokens, message_text, prompt_tokens
from tests.contract.wire_server import WireServer

pytestmark = [pytest.mark.contract, pytest.mark.usefixtures("fresh_detection")]

QUESTION = "What is 2 + 3?"
ADD_TOOL = {"type": "function", "function": {"name": "add", "description": "Add two integers.", "parameters": {
    "type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["a", "b"]}}}
SALE_HEADERS = ("x-sale-auction-id", "x-sale-winner", "x-sale-pinned", "x-sale-auction-cost", "x-sale-auction-tokens")



@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> Iterator[WireServer]:
    native_tool_calls(monkeypatch)
    with WireServer(behaviours()) as server:
        yield server



@pytest.fixture
def gateway(wire: WireServer) -> Iterator[GatewayServer]:
    with GatewayServer(create_gateway_app(pool=pool_of(wire), use_memory=False)) as server:
        yield server


def sdk(gateway: GatewayServer, **kwargs: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key="any", max_retries=0, **kwargs)


def agent_calls(wire: WireServer) -> list[Any]:
    return chats(wire, "agent")


def user(text: str = QUESTION) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


# --- the openai SDK ------------------------------------------------------------------------------


def test_models_list_the_auction_and_every_pool_agent(gateway: GatewayServer) -> None:
    assert [m.id for m in sdk(gateway).models.list()] == ["sale", "small", "large"]


def test_sync_sdk_gets_the_winners_answer_with_the_decision_in_headers_and_body(gateway: GatewayServer, wire: WireServer) -> None:
    raw = sdk(gateway).chat.completions.with_raw_response.create(
        model="sale", messages=[{"role": "system", "content": "Be brief."}, *user()], temperature=0.3, max_tokens=50)
    completion = raw.parse()

    assert completion.choices[0].message.content == "Final Answer: 5"
    headers = {h: raw.headers[h] for h in SALE_HEADERS}
    assert headers["x-sale-winner"] == "large" and headers["x-sale-pinned"] == "false" and "x-sale-fallback" not in raw.headers
    sale = completion.model_extra["sale"]  # type: ignore[index]
    assert sale["auction_id"] == headers["x-sale-auction-id"] and sale["winner"] == "large" and sale["kind"] == "auction"
    assert sale["strategy"] == LARGE_PLAN and sale["runner_up"] == "small" and sale["margin"] > 0
    assert {b["agent"]: b["strategy"] for b in sale["bids"]} == {"small": SMALL_PLAN, "large": LARGE_PLAN}
    scores = {r["agent"]: r for r in sale["scores"]}
    assert scores["large"]["jury"] == {"small": 1.0, "large": 1.0} and scores["small"]["jury"] == {"small": 0.2, "large": 0.2}
    auction = [e for e in sale["ledger"] if e["phase"] != "execute"]
    assert {e["phase"] for e in auction} == {"bid", "jury"} and len(auction) == 2 + 4  # two bids, 2 judges x 2 bids
    assert float(headers["x-sale-auction-cost"]) == pytest.approx(sum(e["cost_usd"] for e in auction), abs=1e-8)
    assert int(headers["x-sale-auction-tokens"]) == sum(e["input_tokens"] + e["output_tokens"] for e in auction)
    # The winner got the request: its model name, the client's fields, the strategy joined to the system message.
    [forwarded] = agent_calls(wire)
    body = forwarded.body
    assert forwarded.model == "large" and body["temperature"] == 0.3 and body["max_tokens"] == 50
    system = body["messages"][0]["content"]
    assert system.startswith("Be brief.\n\n") and MIDDLEWARE_NOTE in system and LARGE_PLAN in system
    assert body["messages"][1:] == user() and "sale" not in body
    # usage is the winner's own, and its line closes the ledger.
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == prompt_tokens(body)
    assert completion.usage.completion_tokens == count_tokens("Final Answer: 5")
    assert sale["ledger"][-1]["phase"] == "execute" and sale["ledger"][-1]["agent"] == "large"
    assert sale["ledger"][-1]["output_tokens"] == completion.usage.completion_tokens


def test_async_sdk_concurrent_conversations_each_run_their_auction(gateway: GatewayServer, wire: WireServer) -> None:
    async def main() -> list[Any]:
        client = openai.AsyncOpenAI(base_url=gateway.base_url, api_key="any", max_retries=0)
        async with client:
            return await asyncio.gather(*(client.chat.completions.with_raw_response.create(
                model="sale", messages=user(f"What is {i} + 3?")) for i in range(4)))

    raws = asyncio.run(main())
    assert {r.headers["x-sale-winner"] for r in raws} == {"large"}
    assert len({r.headers["x-sale-auction-id"] for r in raws}) == 4
    assert [r.parse().choices[0].message.content for r in raws] == ["Final Answer: 5"] * 4
    assert len(chats(wire, "bid")) == 8 and len(agent_calls(wire)) == 4


@pytest.mark.parametrize("include_usage", [True, False])
def test_streamed_answer_is_the_winners_events_with_headers_and_usage_when_asked(
    gateway: GatewayServer, wire: WireServer, include_usage: bool
) -> None:
    options = {"stream_options": {"include_usage": True}} if include_usage else {}
    with sdk(gateway).chat.completions.with_streaming_response.create(
            model="sale", messages=user(), stream=True, **options) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-sale-winner"] == "large" and response.headers["x-sale-pinned"] == "false"
        chunks = list(response.parse())

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Final Answer: 5"
    usage = [c.usage for c in chunks if c.usage is not None]
    if include_usage:
        assert len(usage) == 1 and usage[0].completion_tokens == count_tokens("Final Answer: 5")
    else:
        assert usage == [] and all(c.choices for c in chunks)
    [forwarded] = agent_calls(wire)  # the gateway always asks for the usage chunk, to count the tokens
    assert forwarded.body["stream"] is True and forwarded.body["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("session", [None, "header", "user"])
def test_a_tool_call_and_its_result_on_the_next_request_go_to_the_same_winner_without_a_new_auction(
    gateway: GatewayServer, wire: WireServer, session: str | None
) -> None:
    client = sdk(gateway)
    extra: dict[str, Any] = {}
    if session == "header":
        extra["extra_headers"] = {"x-sale-session": "conversation-7"}
    elif session == "user":
        extra["user"] = "end-user-42"
    messages: list[dict[str, Any]] = user("What is 2 + 3? Use the add tool.")
    first = client.chat.completions.with_raw_response.create(model="sale", messages=messages, tools=[ADD_TOOL],
                                                             tool_choice="auto", **extra)
    call = first.parse().choices[0].message
    assert call.tool_calls and call.tool_calls[0].function.name == "add"  # as the winner made it
    assert json.loads(call.tool_calls[0].function.arguments) == {"a": 2, "b": 3}
    messages += [call.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.tool_calls[0].id, "content": "5"}]
    second = client.chat.completions.with_raw_response.create(model="sale", messages=messages, tools=[ADD_TOOL], **extra)

    assert second.parse().choices[0].message.content == "Final Answer: 5"
    assert second.headers["x-sale-auction-id"] == first.headers["x-sale-auction-id"]
    assert second.headers["x-sale-winner"] == "large" and second.headers["x-sale-pinned"] == "true"
    assert second.headers["x-sale-auction-cost"] == "0.00000000" and second.headers["x-sale-auction-tokens"] == "0"
    assert second.parse().model_extra["sale"]["kind"] == ("continued" if session is None else "pinned")  # type: ignore[index]
    assert len(chats(wire, "bid")) == 2  # one auction for both requests
    calls = agent_calls(wire)
    assert [r.model for r in calls] == ["large", "large"]
    assert [t["function"]["name"] for t in calls[1].body["tools"]] == ["add"]
    assert calls[1].body["messages"][-1] == {"role": "tool", "tool_call_id": call.tool_calls[0].id, "content": "5"}
    # The bidders were told which tools the client offers.
    assert all("(add)" in message_text(r.body["messages"][-1]["content"]) for r in chats(wire, "bid"))


def test_without_a_session_every_new_human_turn_runs_an_auction(gateway: GatewayServer, wire: WireServer) -> None:
    client = sdk(gateway)
    messages = user()
    first = client.chat.completions.with_raw_response.create(model="sale", messages=messages)
    messages += [{"role": "assistant", "content": "Final Answer: 5"}, {"role": "user", "content": "And 3 + 4?"}]
    second = client.chat.completions.with_raw_response.create(model="sale", messages=messages)

    assert second.headers["x-sale-pinned"] == "false"
    assert second.headers["x-sale-auction-id"] != first.headers["x-sale-auction-id"]
    assert len(chats(wire, "bid")) == 4
    # The second auction bid on the turn in its conversation.
    task = message_text(chats(wire, "bid")[-1].body["messages"][-1]["content"])  # type: ignore[index]
    assert "User: What is 2 + 3?" in task and "Request: And 3 + 4?" in task


def test_a_session_is_pinned_to_its_first_winner_until_it_idles_out(wire: WireServer) -> None:
    app = create_gateway_app(pool=pool_of(wire), use_memory=False, session_idle_s=0.5)
    with GatewayServer(app) as gateway:
        client = sdk(gateway, default_headers={"x-sale-session": "s-1"})
        ids = [client.chat.completions.with_raw_response.create(model="sale", messages=user(f"Question {i}?"))
               for i in range(3)]
        assert [r.headers["x-sale-pinned"] for r in ids] == ["false", "true", "true"]
        assert len({r.headers["x-sale-auction-id"] for r in ids}) == 1 and len(chats(wire, "bid")) == 2
        other = sdk(gateway, default_headers={"x-sale-session": "s-2"}).chat.completions.with_raw_response.create(
            model="sale", messages=user())
        assert other.headers["x-sale-pinned"] == "false"
        asyncio.run(asyncio.sleep(0.7))
        later = client.chat.completions.with_raw_response.create(model="sale", messages=user("Question 4?"))
        assert later.headers["x-sale-pinned"] == "false" and later.headers["x-sale-auction-id"] != ids[0].headers["x-sale-auction-id"]


def test_a_sessions_concurrent_first_requests_share_one_auction(gateway: GatewayServer, wire: WireServer) -> None:
    async def main() -> list[Any]:
        async with openai.AsyncOpenAI(base_url=gateway.base_url, api_key="any", max_retries=0) as client:
            return await asyncio.gather(*(client.chat.completions.with_raw_response.create(
                model="sale", messages=user(), extra_headers={"x-sale-session": "busy"}) for _ in range(3)))

    raws = asyncio.run(main())
    assert len({r.headers["x-sale-auction-id"] for r in raws}) == 1
    assert sorted(r.headers["x-sale-pinned"] for r in raws) == ["false", "true", "true"]
    assert len(chats(wire, "bid")) == 2


def test_a_pool_agent_by_name_is_a_plain_pass_through(gateway: GatewayServer, wire: WireServer) -> None:
    raw = sdk(gateway).chat.completions.with_raw_response.create(model="small", messages=user(), max_completion_tokens=20)
    completion = raw.parse()

    assert "x-sale-auction-id" not in raw.headers and "sale" not in (completion.model_extra or {})
    [forwarded] = chats(wire)  # no auction: one request, to the agent named
    assert forwarded.model == "small"
    assert forwarded.body["messages"] == user() and forwarded.body["max_tokens"] == 20  # the agent's token_limit_field
    assert "max_completion_tokens" not in forwarded.body
    assert completion.choices[0].message.content == SMALL_PLAN


def test_per_request_auction_settings_ride_in_the_sale_field(gateway: GatewayServer, wire: WireServer) -> None:
    completion = sdk(gateway).chat.completions.create(model="sale", messages=user(), extra_body={"sale": {"bid_max_tokens": 33}})

    assert completion.model_extra["sale"]["winner"] == "large"  # type: ignore[index]
    assert [r.body["max_tokens"] for r in chats(wire, "bid")] == [33, 33]  # type: ignore[index]
    assert "sale" not in agent_calls(wire)[0].body  # type: ignore[operator]


def test_the_endpoints_max_concurrency_bounds_the_calls_through_the_gateway(monkeypatch: pytest.MonkeyPatch) -> None:
    native_tool_calls(monkeypatch)
    with WireServer(behaviours(latency_s=0.1)) as wire:
        pool = pool_of(wire, large={"max_concurrency": 1})
        with GatewayServer(create_gateway_app(pool=pool, use_memory=False)) as gateway:
            async def main() -> list[Any]:
                async with openai.AsyncOpenAI(base_url=gateway.base_url, api_key="any", max_retries=0) as client:
                    return await asyncio.gather(*(client.chat.completions.create(model="large", messages=user())
                                                  for _ in range(4)))

            assert len(asyncio.run(main())) == 4
        assert wire.max_in_flight("large") == 1 and len(chats(wire, model="large")) == 4


# --- LangChain -----------------------------------------------------------------------------------


def test_chat_openai_pointed_at_the_gateway_invokes_and_streams(gateway: GatewayServer, wire: WireServer) -> None:
    model = ChatOpenAI(model="sale", base_url=gateway.base_url, api_key="any", max_retries=0, stream_usage=True)

    answer = model.invoke(QUESTION)
    assert isinstance(answer, AIMessage) and answer.content == "Final Answer: 5"
    assert answer.usage_metadata is not None and answer.usage_metadata["output_tokens"] == count_tokens("Final Answer: 5")
    chunks = list(model.stream(QUESTION))
    assert "".join(str(c.content) for c in chunks) == "Final Answer: 5"
    assert sum((c.usage_metadata or {}).get("output_tokens", 0) for c in chunks) == count_tokens("Final Answer: 5")
    assert [r.model for r in agent_calls(wire)] == ["large", "large"]


@pytest.mark.parametrize("session", [True, False])
def test_create_agent_on_the_gateway_runs_one_auction_for_its_tool_round_trip(
    gateway: GatewayServer, wire: WireServer, session: bool
) -> None:
    headers = {"x-sale-session": "agent-run-1"} if session else None
    model = ChatOpenAI(model="sale", base_url=gateway.base_url, api_key="any", max_retries=0, default_headers=headers)
    agent = create_agent(model=model, tools=[add])

    out = agent.invoke({"messages": [HumanMessage("What is 2 + 3? Use the add tool.")]})

    assert [type(m).__name__ for m in out["messages"]] == ["HumanMessage", "AIMessage", "ToolMessage", "AIMessage"]
    assert isinstance(out["messages"][2], ToolMessage) and out["messages"][2].content == "5"
    assert out["messages"][-1].content == "Final Answer: 5"
    assert len(chats(wire, "bid")) == 2  # one auction for the whole agent run
    calls = agent_calls(wire)
    assert [r.model for r in calls] == ["large", "large"]
    assert all(LARGE_PLAN in message_text(r.body["messages"][0]["content"]) for r in calls)


# --- feedback, metrics, health -------------------------------------------------------------------


def test_outcomes_reach_the_auction_memory_by_auction_id_or_session(wire: WireServer, tmp_path: Path) -> None:
    memory = AuctionMemory(path=str(tmp_path / "memory"))
    with GatewayServer(create_gateway_app(pool=pool_of(wire), memory=memory)) as gateway:
        client = sdk(gateway)
        first = client.chat.completions.with_raw_response.create(model="sale", messages=user())
        second = client.chat.completions.with_raw_response.create(model="sale", messages=user("What is 4 + 4?"),
                                                                  extra_headers={"x-sale-session": "graded"})
        by_id = httpx.post(f"{gateway.base_url}/sale/outcome",
                           json={"auction_id": first.headers["x-sale-auction-id"], "outcome": "passed"})
        by_session = httpx.post(f"{gateway.base_url}/sale/outcome", json={"session": "graded", "outcome": "failed"})

    assert by_id.status_code == 200 and by_id.json()["stored"] is True
    assert by_session.status_code == 200 and by_session.json()["auction_id"] == second.headers["x-sale-auction-id"]
    outcomes = {a: memory._tasks.get(ids=[a])["metadatas"][0]["outcome"]
                for a in (first.headers["x-sale-auction-id"], second.headers["x-sale-auction-id"])}
    assert list(outcomes.values()) == ["passed", "failed"]


def test_metrics_count_turns_wins_tokens_and_errors_and_health_answers(gateway: GatewayServer) -> None:
    client = sdk(gateway, default_headers={"x-sale-session": "m"})
    client.chat.completions.create(model="sale", messages=user())
    client.chat.completions.create(model="sale", messages=user("Again?"))
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="nope", messages=user())

    text = httpx.get(f"{gateway.url}/metrics").text
    assert httpx.get(f"{gateway.base_url}/sale/metrics").status_code == 200
    for line in ('sale_gateway_turns_total{kind="auction"} 1.0', 'sale_gateway_turns_total{kind="pinned"} 1.0',
                 'sale_gateway_auctions_total{result="ok"} 1.0', 'sale_gateway_wins_total{agent="large"} 1.0',
                 'sale_gateway_errors_total{code="model_not_found",status="400"} 1.0', "sale_gateway_sessions 1.0",
                 "sale_gateway_auction_seconds_count 1.0", 'sale_gateway_upstream_seconds_count{agent="large"} 2.0'):
        assert line in text, line
    assert 'sale_gateway_tokens_total{agent="large",kind="output",phase="execute"} 8.0' in text
    assert 'sale_gateway_cost_dollars_total{agent="small",phase="bid"}' in text
    health = httpx.get(f"{gateway.url}/health").json()
    assert health["status"] == "ok" and health["agents"] == ["small", "large"]


def test_a_slow_winner_does_not_hold_other_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    native_tool_calls(monkeypatch)
    with WireServer({**behaviours(), "large": ModelBehaviour(latency_s=0.3)}) as wire:
        with GatewayServer(create_gateway_app(pool=pool_of(wire), use_memory=False)) as gateway:
            async def main() -> list[Any]:
                async with openai.AsyncOpenAI(base_url=gateway.base_url, api_key="any", max_retries=0) as client:
                    return await asyncio.gather(*(client.chat.completions.create(model="large", messages=user())
                                                  for _ in range(6)))

            asyncio.run(main())
        assert wire.max_in_flight("large") == 6  # no bound in the pool: every request was in flight at once

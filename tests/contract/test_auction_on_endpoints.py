"""Whole auctions through ``build_sale_graph().compile()`` against the loopback wire server.

Every agent is a real :class:`sale_graph.llm.chat_openai.SaleChatOpenAI` built by the default
model factory from its :class:`~sale_graph.pool.AgentSpec`; the only fake is the model
behind the HTTP endpoint (:mod:`tests.contract.wire_server`). Execution runs with
``tools=[]`` (no sandbox): the executor answers ``Final Answer: ...``.

The wire formats these tests rely on, and where each is documented (the same tags as
:mod:`tests.contract.wire_formats`):

* Qwen3 inline thinking, ``<think>...</think>`` before the answer in ``content``, turned off
  with ``chat_template_kwargs.enable_thinking = false``:
  https://huggingface.co/Qwen/Qwen3-8B#switching-between-thinking-and-non-thinking-mode [QWEN3-CARD]
* vLLM's reasoning parser, thinking in ``message.reasoning_content`` / ``reasoning`` and the
  answer in ``content``, streamed as ``delta.reasoning_content``:
  https://docs.vllm.ai/en/latest/features/reasoning_outputs.html [VLLM-REASON];
  ``vllm/reasoning/qwen3_reasoning_parser.py`` [VLLM-QWEN3]; log-probs cover the think block
  (``vllm/entrypoints/openai/serving_chat.py``) [VLLM-CHAT]; ``completion_tokens_details.reasoning_tokens``
  and reasoning counting toward ``max_tokens`` (vllm-project/vllm PR #45802, issue #28266) [VLLM-USAGE].
* ``finish_reason`` ``"length"``, ``logprobs.content[]``, ``usage``:
  https://platform.openai.com/docs/api-reference/chat/object [OAI-OBJECT]
* ``response_format`` ``{"type": "json_schema", "json_schema": {...}}``, ``max_completion_tokens``:
  https://platform.openai.com/docs/api-reference/chat/create [OAI-CREATE];
  vLLM accepts it: https://docs.vllm.ai/en/latest/features/structured_outputs/ [VLLM-STRUCT]
* llama-cpp-python's ``response_format`` is ``text`` or ``json_object`` with an optional
  ``schema`` (``llama_cpp/llama_types.py`` ``ChatCompletionRequestResponseFormat``) and a
  validation error is an HTTP 500 (``llama_cpp/server/errors.py`` ``RouteErrorHandler``),
  https://github.com/abetlen/llama-cpp-python [LLAMA-TYPES]
* error bodies and statuses 401/403/404/429/500, ``Retry-After`` with 429:
  https://platform.openai.com/docs/guides/error-codes [OAI-ERRORS]
* streamed chunks and the usage chunk of ``stream_options.include_usage``:
  https://platform.openai.com/docs/api-reference/chat/streaming [OAI-STREAM]
* LangGraph's ``stream_mode="messages"`` yields ``(message_chunk, metadata)`` with the
  run's ``tags`` in the metadata: https://langchain-ai.github.io/langgraph/how-tos/streaming/
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from sale_graph import AgentPool, AgentSpec, SaleContext, build_sale_graph
from sale_graph.errors import AuctionError, EndpointError
from sale_graph.jury.ask import forget_detected
from tests.contract.conftest import ServerFactory
from tests.contract.wire_formats import ModelBehaviour, count_tokens, message_text, tokenize
from tests.contract.wire_server import RecordedRequest, WireServer

pytestmark = pytest.mark.contract

TASK = "What is the capital of Australia?"
PLAN = "1. Search the capital of Australia. 2. Check a second source. 3. Answer with the city name."
HIDDEN = "HIDDEN-REASONING-7f3a"
THOUGHT = f"{HIDDEN}: weigh the two sources quietly before writing the plan."
THINK_BLOCK = f"<think>\n{THOUGHT}\n</think>"
N_THINK = count_tokens(THINK_BLOCK)  # the think block, markers included
RAW_THINKING_PLAN = f"{THINK_BLOCK}\n\n{PLAN}"  # what a Qwen3 model generates for a bid [QWEN3-CARD]
ANSWER = "Final Answer: Canberra"
SCORE_ENUM = [0, 1, 2, 3, 4, 5]


# --- what the fake models answer --------------------------------------------------------------


def role_of(request: Mapping[str, Any]) -> str:
    """Which of the library's prompts a request carries: ``bid``, ``jury`` or ``execute``."""
    messages = request.get("messages") or []
    first = messages[0] if messages else {}
    if first.get("role") == "system":
        text = message_text(first.get("content"))
        if text.startswith("You won the auction"):
            return "execute"
        if text.startswith("Rate how likely"):
            return "jury"
    return "bid"


def responder(plan: str = PLAN, score: str = "SCORE: 4", answer: str = ANSWER) -> Any:
    """The visible answer per prompt: the plan to a bid, ``score`` to a text jury prompt, ``answer`` to the executor."""

    def respond(request: Mapping[str, Any]) -> str:
        return {"bid": plan, "jury": score, "execute": answer}[role_of(request)]

    return respond


def thinker(request: Mapping[str, Any]) -> str:
    return THOUGHT


def behaviour(style: str = "openai", server_kind: str = "vllm", **kwargs: Any) -> ModelBehaviour:
    kwargs.setdefault("responder", responder())
    return ModelBehaviour(style=style, server_kind=server_kind, thinker=thinker, **kwargs)  # type: ignore[arg-type]


def agent(server: WireServer, name: str, model: str | None = None, price: float = 0.1, **kwargs: Any) -> AgentSpec:
    kwargs.setdefault("timeout_s", 10.0)
    return AgentSpec(name=name, model=model or name, base_url=server.base_url, price_input=price, price_output=price, **kwargs)


def pool(*agents: AgentSpec) -> AgentPool:
    return AgentPool(tuple(agents), source="contract pool")


def run(agents: AgentPool, *, graph: Any = None, **settings: Any) -> dict[str, Any]:
    graph = graph or build_sale_graph(tools=[]).compile()
    context = SaleContext(pool=agents, use_memory=False, **{"check_endpoints": True, **settings})
    out: dict[str, Any] = graph.invoke({"task": TASK}, context=context)
    return out


def chats(server: WireServer, role: str | None = None, model: str | None = None) -> list[RecordedRequest]:
    """The chat requests the server saw (optionally of one prompt kind and one model), in arrival order."""
    return [r for r in server.requests(model) if r.path.endswith("/chat/completions") and r.body is not None
            and (role is None or role_of(r.body) == role)]


def bid_of(out: Mapping[str, Any], name: str) -> dict[str, Any]:
    return next(b for b in out["bids"] if b["agent"] == name)


def row_of(out: Mapping[str, Any], name: str) -> dict[str, Any]:
    return next(r for r in out["scores"] if r["agent"] == name)


def ledger_of(out: Mapping[str, Any], phase: str, name: str) -> list[dict[str, Any]]:
    return [e for e in out["ledger"] if e["phase"] == phase and e["agent"] == name]


@pytest.fixture(autouse=True)
def _fresh_detection() -> Iterator[None]:
    """Structured-output detection is cached per endpoint for the process: start and end each test clean."""
    forget_detected()
    yield
    forget_detected()


# --- reasoning models: the bid is the visible plan --------------------------------------------

# case -> (model behaviour options, how |s| is known: the bid's token_source)
THINKING_CASES = {
    # Qwen3 behind a server with no reasoning parser: <think> inline; log-probs of every token locate </think>.
    "qwen3-inline+logprobs": (dict(style="qwen3_inline"), "logprobs"),
    # Same without log-probs and with 0 reported reasoning tokens: the documented character-share estimate.
    "qwen3-inline-nologprobs": (dict(style="qwen3_inline", logprobs_supported=False), "estimate"),
    # vLLM --reasoning-parser qwen3: reasoning_content apart; log-probs cover the think block [VLLM-CHAT].
    "vllm-reasoning+logprobs": (dict(style="vllm_reasoning"), "logprobs"),
    # vLLM whose log-probs cover only the content: usage.reasoning_tokens gives the split [VLLM-USAGE].
    "vllm-reasoning+content-logprobs": (dict(style="vllm_reasoning", logprobs_include_reasoning=False), "usage"),
    "vllm-reasoning-nologprobs": (dict(style="vllm_reasoning", logprobs_supported=False), "usage"),
}


@pytest.mark.parametrize("case", list(THINKING_CASES))
def test_thinking_agent_bids_its_visible_plan_and_is_not_charged_for_thinking(make_wire_server: ServerFactory, case: str) -> None:
    options, source = THINKING_CASES[case]
    server = make_wire_server({"thinker": behaviour(**options), "plain": behaviour()})
    out = run(pool(agent(server, "thinker"), agent(server, "plain")))

    thinking, plain = bid_of(out, "thinker"), bid_of(out, "plain")
    assert thinking["status"] == "ok" and thinking["strategy"] == PLAN == plain["strategy"]
    assert "<think>" not in thinking["strategy"] and HIDDEN not in thinking["strategy"]
    assert thinking["token_source"] == source
    assert thinking["output_tokens"] == count_tokens(RAW_THINKING_PLAN)  # every generated token, thinking included
    if source == "estimate":  # sale_graph.llm.reasoning.split_output: the visible characters' share of the output
        expected = round(count_tokens(RAW_THINKING_PLAN) * len(PLAN) / (len(PLAN) + len(THOUGHT)))
        assert thinking["tokens"] == expected
    else:
        assert thinking["tokens"] == count_tokens(PLAN) == plain["tokens"]
        assert thinking["reasoning_tokens"] == N_THINK
        # Same price, same visible plan: the thinker's cost is the plain agent's (no penalty for thinking).
        assert row_of(out, "thinker")["cost"] == row_of(out, "plain")["cost"]
        assert row_of(out, "thinker")["tokens"] == row_of(out, "plain")["tokens"]
    assert thinking["reasoning_tokens"] > 0
    assert thinking["reasoning_tokens"] + thinking["tokens"] == thinking["output_tokens"]
    assert plain["reasoning_tokens"] == 0 and plain["output_tokens"] == plain["tokens"] == count_tokens(PLAN)
    # The ledger bills every generated token of the bid.
    assert [e["output_tokens"] for e in ledger_of(out, "bid", "thinker")] == [count_tokens(RAW_THINKING_PLAN)]

    # Judges and the executor never see the thinking: no request body carries it.
    assert chats(server, "jury") and chats(server, "execute")
    for request in chats(server):
        text = json.dumps(request.body)
        assert HIDDEN not in text and "<think>" not in text
    for request in chats(server, "jury"):
        assert PLAN in json.dumps(request.body)
    executor_system = message_text(chats(server, "execute")[0].body["messages"][0]["content"])  # type: ignore[index]
    assert PLAN in executor_system
    assert out["answer"] == "Canberra"


def test_vllm_auction_and_execute_request_fields(make_wire_server: ServerFactory) -> None:
    server = make_wire_server({"qwen3": behaviour("vllm_reasoning")})
    qwen = agent(
        server, "qwen3", extra_body={"repetition_penalty": 1.05},
        auction_extra_body={"chat_template_kwargs": {"enable_thinking": False}}, execute_extra_body={"top_k": 20},
    )
    out = run(pool(qwen))

    auction = chats(server, "bid") + chats(server, "jury")
    assert len(chats(server, "bid")) == 1 and len(chats(server, "jury")) == 1
    for request in auction:
        body = request.body or {}
        assert body["chat_template_kwargs"] == {"enable_thinking": False}
        assert body["repetition_penalty"] == 1.05 and "top_k" not in body
    [execute] = chats(server, "execute")
    body = execute.body or {}
    assert "chat_template_kwargs" not in body and body["top_k"] == 20 and body["repetition_penalty"] == 1.05

    # Thinking off for the auction: nothing to strip, nothing billed as reasoning.
    bid = bid_of(out, "qwen3")
    assert (bid["strategy"], bid["tokens"], bid["reasoning_tokens"]) == (PLAN, count_tokens(PLAN), 0)
    # Thinking on for the executor: billed in full, the answer read from the visible content.
    [step] = ledger_of(out, "execute", "qwen3")
    assert step["output_tokens"] == count_tokens(f"{THINK_BLOCK}\n\n{ANSWER}")
    assert out["answer"] == "Canberra"


# --- finish_reason = length -------------------------------------------------------------------


@pytest.mark.parametrize("style", ["qwen3_inline", "vllm_reasoning"])
def test_bid_cap_inside_the_think_block_fails_the_bid_with_advice(make_wire_server: ServerFactory, style: str) -> None:
    server = make_wire_server({"capped": behaviour(style), "plain": behaviour()})
    out = run(pool(agent(server, "capped", bid_max_tokens=5), agent(server, "plain")))

    capped = bid_of(out, "capped")
    assert capped["status"] == "error" and capped["strategy"] == ""
    assert capped["truncated"] is True and capped["finish_reason"] == "length"
    assert capped["output_tokens"] == 5 and capped["reasoning_tokens"] == 5 and capped["tokens"] == 0
    assert "raise bid_max_tokens" in capped["error"] and "turn thinking off" in capped["error"]
    assert any("bid of capped failed" in n and "bid_max_tokens" in n for n in out["notes"])
    assert [e["output_tokens"] for e in ledger_of(out, "bid", "capped")] == [5]  # the wasted thinking is still billed
    [bid_request] = chats(server, "bid", "capped")
    assert (bid_request.body or {})["max_tokens"] == 5
    assert out["selection"]["winner"] == "plain" and out["answer"] == "Canberra"


def test_bid_cap_inside_the_visible_plan_is_truncated_and_noted(make_wire_server: ServerFactory) -> None:
    server = make_wire_server({"capped": behaviour("qwen3_inline"), "plain": behaviour()})
    out = run(pool(agent(server, "capped", bid_max_tokens=N_THINK + 3), agent(server, "plain")))

    capped = bid_of(out, "capped")
    visible = "".join(tokenize(PLAN)[:3])
    assert capped["status"] == "ok" and capped["strategy"] == visible == "1. Search"
    assert capped["truncated"] is True and capped["finish_reason"] == "length"
    assert (capped["tokens"], capped["reasoning_tokens"], capped["token_source"]) == (3, N_THINK, "logprobs")
    assert any("bid of capped was cut at its token cap (finish_reason=length)" in n for n in out["notes"])
    assert bid_of(out, "plain")["truncated"] is False


# --- retries, fatal errors, persistent failures -----------------------------------------------


def test_429_twice_with_retry_after_is_retried_for_the_bid_and_the_vote(make_wire_server: ServerFactory) -> None:
    wait = 0.25
    rate_limited = behaviour(fail_first=[429, 429], retry_after=str(wait))
    armed: list[bool] = []
    servers: list[WireServer] = []

    def respond_and_rearm(request: Mapping[str, Any]) -> str:
        # After the bid has been answered, the next two requests (the jury call) are rate-limited too.
        if role_of(request) == "bid" and not armed:
            armed.append(True)
            servers[0].set_behaviour("solo", rate_limited)
        return responder()(request)

    server = make_wire_server({"solo": behaviour(fail_first=[429, 429], retry_after=str(wait), responder=respond_and_rearm)})
    servers.append(server)
    out = run(pool(agent(server, "solo", max_retries=3)))

    bid, [vote] = bid_of(out, "solo"), out["votes"]
    assert bid["status"] == "ok" and vote["status"] == "ok"
    for record in (bid, vote):
        assert len(record["retries"]) == 2
        assert all("HTTP 429" in line and "Retry-After" in line for line in record["retries"])
    assert any("bid of solo needed 2 retries" in n and "Retry-After" in n for n in out["notes"])
    assert any(n.startswith("jury call of solo") and "needed 2 retried call(s)" in n and "Retry-After" in n for n in out["notes"])
    records = chats(server, model="solo")
    assert [r.status for r in records] == [429, 429, 200, 429, 429, 200, 200]  # bid, jury, execute
    for failed, retry in zip(records, records[1:], strict=False):
        if failed.status == 429:
            assert failed.finished is not None and retry.arrived - failed.finished >= wait


def test_retried_votes_are_noted(make_wire_server: ServerFactory) -> None:
    armed: list[bool] = []
    servers: list[WireServer] = []

    def respond_and_rearm(request: Mapping[str, Any]) -> str:
        if role_of(request) == "bid" and not armed:
            armed.append(True)
            servers[0].set_behaviour("solo", behaviour(fail_first=[429], retry_after="0.05"))
        return responder()(request)

    server = make_wire_server({"solo": behaviour(responder=respond_and_rearm)})
    servers.append(server)
    out = run(pool(agent(server, "solo")))
    assert len(out["votes"][0]["retries"]) == 1
    assert not out["bids"][0]["retries"]  # only the vote was retried: any note about a retry is the vote's
    assert any(n.startswith("jury call of solo") and "retr" in n for n in out["notes"])


@pytest.mark.parametrize("failure", ["404-unknown-model", "401-bad-key", "403-forbidden"])
def test_refused_endpoint_fails_fast_naming_the_agent_and_url(make_wire_server: ServerFactory, failure: str) -> None:
    good_server = make_wire_server({"good": behaviour()})
    if failure == "401-bad-key":
        bad_server, model = make_wire_server({"m": behaviour()}, api_key="secret"), "m"  # the agent sends no key
    elif failure == "403-forbidden":
        bad_server, model = make_wire_server({"m": behaviour(error_status=403)}), "m"
    else:
        bad_server, model = make_wire_server({"m": behaviour()}), "no-such-model"
    bad = agent(bad_server, "bad", model=model, max_retries=3)
    with pytest.raises(EndpointError) as info:
        run(pool(agent(good_server, "good"), bad), check_endpoints=False)
    message = str(info.value)
    assert "'bad'" in message and bad_server.base_url in message and failure[:3] in message
    assert len(chats(bad_server)) == 1  # fail fast: one request, no retries
    assert not chats(good_server, "execute")


def test_persistent_500_is_retried_max_retries_times_then_the_bid_fails(make_wire_server: ServerFactory) -> None:
    server = make_wire_server({"good1": behaviour(), "good2": behaviour(), "broken": behaviour(error_status=500)})
    agents = pool(agent(server, "good1"), agent(server, "good2"), agent(server, "broken", max_retries=1))
    out = run(agents)

    broken = bid_of(out, "broken")
    assert broken["status"] == "error" and "500" in broken["error"]
    # The first attempt and max_retries=1 retry (after the exponential backoff), then the bid gives up.
    assert [r.status for r in chats(server, "bid", "broken")] == [500, 500]
    assert len(broken["retries"]) == 1 and "HTTP 500" in broken["retries"][0]
    assert any("bid of broken failed" in n for n in out["notes"])
    assert {r["agent"] for r in out["scores"]} == {"good1", "good2"}
    # Its votes are missing with the reason; two judges of three answered, above the quorum.
    missing = [v for v in out["votes"] if v["judge"] == "broken"]
    assert missing and all(v["status"] == "missing" and "call failed" in v["reason"] for v in missing)
    assert all(r["missing_judges"] == ["broken"] for r in out["scores"])
    assert out["answer"] == "Canberra"


def test_a_bid_that_fails_after_retries_records_them(make_wire_server: ServerFactory) -> None:
    server = make_wire_server({"good": behaviour(), "broken": behaviour(error_status=500)})
    out = run(pool(agent(server, "good"), agent(server, "broken", max_retries=1)), jury_quorum=0.4)
    assert len(chats(server, "bid", "broken")) == 2
    assert len(bid_of(out, "broken").get("retries") or []) == 1
    assert any("bid of broken" in n and "retr" in n for n in out["notes"])


# --- structured jury answers ------------------------------------------------------------------


@pytest.mark.parametrize("server_kind", ["openai", "vllm"])
def test_openai_and_vllm_judges_answer_with_a_json_schema(make_wire_server: ServerFactory, server_kind: str) -> None:
    server = make_wire_server({"a": behaviour(server_kind=server_kind), "b": behaviour(server_kind=server_kind)})
    out = run(pool(agent(server, "a"), agent(server, "b")))

    jury = chats(server, "jury")
    assert len(jury) == 4  # 2 judges x 2 bids, no fallback
    for request in jury:
        rf = (request.body or {})["response_format"]
        assert rf["type"] == "json_schema" and rf["json_schema"]["strict"] is True
        schema = rf["json_schema"]["schema"]
        assert schema["properties"]["score"]["enum"] == SCORE_ENUM and schema["required"] == ["score"]
    assert len(out["votes"]) == 4
    assert all(v["answer_format"] == "json_schema" and v["status"] == "ok" for v in out["votes"])
    assert all(v["likert"] == 0 for v in out["votes"])  # the wire server's schema instance: the enum's first value


def test_llama_cpp_judge_falls_back_to_json_object_once_per_endpoint(make_wire_server: ServerFactory) -> None:
    server = make_wire_server({"llama": behaviour(server_kind="llama_cpp_python")})
    agents = pool(agent(server, "llama"))  # default max_retries: the rejection must still not be retried
    graph = build_sale_graph(tools=[]).compile()

    first = run(agents, graph=graph)
    formats = [((r.body or {})["response_format"]["type"], r.status) for r in chats(server, "jury")]
    assert formats == [("json_schema", 500), ("json_object", 200)]
    rf = (chats(server, "jury")[-1].body or {})["response_format"]
    assert rf["schema"]["properties"]["score"]["enum"] == SCORE_ENUM  # llama-cpp-python's json_object + schema [LLAMA-TYPES]
    [vote] = first["votes"]
    assert vote["answer_format"] == "json_object" and vote["status"] == "ok"

    server.reset()
    second = run(agents, graph=graph)
    formats = [((r.body or {})["response_format"]["type"], r.status) for r in chats(server, "jury")]
    assert formats == [("json_object", 200)]  # detected once: the next auction asks json_object directly
    assert [v["answer_format"] for v in second["votes"]] == ["json_object"]


def test_llama_cpp_format_rejection_is_not_retried(make_wire_server: ServerFactory) -> None:
    server = make_wire_server({"llama": behaviour(server_kind="llama_cpp_python")})
    run(pool(agent(server, "llama", max_retries=1)))
    schema_requests = [r for r in chats(server, "jury") if (r.body or {})["response_format"]["type"] == "json_schema"]
    assert len(schema_requests) == 1


def test_structured_output_none_asks_for_a_text_score(make_wire_server: ServerFactory) -> None:
    server = make_wire_server({"a": behaviour()})
    out = run(pool(agent(server, "a", structured_output="none")))

    [request] = chats(server, "jury")
    body = request.body or {}
    assert "response_format" not in body
    assert message_text(body["messages"][-1]["content"]).endswith("SCORE:")
    [vote] = out["votes"]
    assert (vote["answer_format"], vote["likert"], vote["status"]) == ("text", 4.0, "ok")


# --- judges that fail: missing votes, quorum, degraded auctions -------------------------------


def test_judge_out_of_range_has_missing_votes_with_the_reason(make_wire_server: ServerFactory) -> None:
    server = make_wire_server({"a": behaviour(), "b": behaviour(), "wild": behaviour(responder=responder(score="SCORE: 11"))})
    agents = pool(*(agent(server, n, structured_output="none") for n in ("a", "b", "wild")))
    out = run(agents)

    wild = [v for v in out["votes"] if v["judge"] == "wild"]
    assert len(wild) == 3
    assert all(v["status"] == "missing" and v["likert"] is None and "outside 0-5" in v["reason"] for v in wild)
    assert all(v["status"] == "ok" for v in out["votes"] if v["judge"] != "wild")
    for row in out["scores"]:
        assert row["missing_judges"] == ["wild"] and "renormalised over 2/3" in row["note"]
    assert out.get("degraded") is None


def all_judges_fail(make_wire_server: ServerFactory) -> tuple[WireServer, AgentPool]:
    """A pool told to ask llama-cpp-python servers for json_schema: every jury call is refused with HTTP 500."""
    server = make_wire_server({"a": behaviour(server_kind="llama_cpp_python"), "b": behaviour(server_kind="llama_cpp_python")})
    agents = pool(*(agent(server, n, structured_output="json_schema") for n in ("a", "b")))
    return server, agents


def test_all_judges_failing_stops_the_auction_naming_the_quorum(make_wire_server: ServerFactory) -> None:
    server, agents = all_judges_fail(make_wire_server)
    with pytest.raises(AuctionError) as info:
        run(agents)
    message = str(info.value)
    assert "quorum" in message and "allow_degraded" in message and "call failed" in message
    assert len(chats(server, "bid")) == 2 and len(chats(server, "jury")) == 4
    assert all(r.status == 500 for r in chats(server, "jury"))
    assert not chats(server, "execute")


def test_all_judges_failing_with_allow_degraded_completes_flagged(make_wire_server: ServerFactory) -> None:
    server, agents = all_judges_fail(make_wire_server)
    out = run(agents, allow_degraded=True)
    assert out["degraded"] and "quorum" in out["degraded"]["reason"]
    assert sorted(out["degraded"]["bids"]) == ["a/original", "b/original"]
    assert any(n.startswith("DEGRADED auction") for n in out["notes"])
    assert all(v["status"] == "missing" for v in out["votes"])
    assert out["answer"] == "Canberra" and len(chats(server, "execute")) == 1


# --- streaming is neutral ---------------------------------------------------------------------


def streaming_pool(server: WireServer) -> AgentPool:
    return pool(agent(server, "thinker"), agent(server, "reasoner"), agent(server, "plain", price=0.05))


def summary(out: Mapping[str, Any]) -> dict[str, Any]:
    bids = sorted((b["agent"], b["strategy"], b["tokens"], b["reasoning_tokens"], b["output_tokens"], b["token_source"], b["entropy"])
                  for b in out["bids"])
    votes = sorted((v["judge"], v["bidder"], v["likert"], v["status"], v.get("answer_format")) for v in out["votes"])
    ledger = sorted((e["phase"], e["agent"], e["input_tokens"], e["output_tokens"]) for e in out["ledger"])
    return {"bids": bids, "votes": votes, "ledger": ledger, "winner": out["selection"]["winner"], "answer": out["answer"]}


def test_streaming_gives_the_same_auction_and_tags_internal_calls(make_wire_server: ServerFactory) -> None:
    server = make_wire_server({
        "thinker": behaviour("qwen3_inline"), "reasoner": behaviour("vllm_reasoning"), "plain": behaviour(),
    })
    graph = build_sale_graph(tools=[]).compile()
    context = SaleContext(pool=streaming_pool(server), use_memory=False)
    invoked = graph.invoke({"task": TASK}, context=context)
    assert not any(r.body.get("stream") for r in chats(server))  # type: ignore[union-attr]

    server.reset()
    final: dict[str, Any] = {}
    chunks: list[tuple[tuple[str, ...], Any, dict[str, Any]]] = []
    # subgraphs=True: the executor is a create_agent graph inside the execute node, and LangGraph streams a
    # nested graph's messages only with it (see test_executor_chunks_reach_a_plain_messages_stream).
    stream = graph.stream({"task": TASK}, context=context, stream_mode=["messages", "values"], subgraphs=True)
    for namespace, mode, payload in stream:
        if mode == "values" and not namespace:
            final = payload
        elif mode == "messages":
            chunks.append((namespace, *payload))
    assert all(r.body.get("stream") for r in chats(server))  # type: ignore[union-attr]  # the streamed path ran

    assert summary(final) == summary(invoked)
    assert not any(e.get("estimated") for e in invoked["ledger"] + final["ledger"])
    assert bid_of(final, "thinker")["reasoning_tokens"] == N_THINK and bid_of(final, "reasoner")["reasoning_tokens"] == N_THINK

    tags = [set(meta.get("tags") or []) for _ns, _chunk, meta in chunks]
    assert any("sale:bid" in t for t in tags) and any("sale:jury" in t for t in tags)
    assert all("sale" in t for t in tags if t & {"sale:bid", "sale:jury"})
    # A caller that drops the auction's internal calls by tag keeps only the execution's chunks.
    kept = [(ns, chunk, meta) for ns, chunk, meta in chunks if not set(meta.get("tags") or []) & INTERNAL_TAGS]
    assert kept
    # Left after filtering: the executor's chunks (tagged sale:execute; with no tools the executor is one
    # model call in the execute node, with tools a nested agent graph under execute:...) and the execute
    # node's own turn (untagged): the task and the answer appended to `messages`.
    executor = [(ns, meta) for ns, _chunk, meta in kept if "sale:execute" in (meta.get("tags") or [])]
    assert executor and all(meta.get("langgraph_node") == "execute" or (ns and ns[0].startswith("execute:"))
                            for ns, meta in executor)
    assert all("sale:execute" in (meta.get("tags") or []) or meta.get("langgraph_node") == "execute" for _ns, _chunk, meta in kept)
    assert ANSWER in "".join(str(chunk.content) for _ns, chunk, _meta in kept)


INTERNAL_TAGS = {"sale:bid", "sale:jury", "sale:refine"}


def test_the_answer_reaches_a_plain_messages_stream(make_wire_server: ServerFactory) -> None:
    server = make_wire_server({"plain": behaviour()})
    graph = build_sale_graph(tools=[]).compile()
    context = SaleContext(pool=pool(agent(server, "plain")), use_memory=False)
    chunks = [payload for mode, payload in graph.stream({"task": TASK}, context=context, stream_mode=["messages", "values"])
              if mode == "messages"]
    assert chunks  # the bid and jury calls are there
    kept = [chunk for chunk, meta in chunks if not set(meta.get("tags") or []) & {"sale"}]
    # Without subgraphs=True the executor's own chunks stay inside its nested graph; what is left after
    # dropping everything tagged `sale` is the execute node's turn: the task and the extracted answer.
    assert [type(c).__name__ for c in kept] == ["HumanMessage", "AIMessage"]
    assert kept[0].content == TASK and kept[1].content == ANSWER.removeprefix("Final Answer: ")


# --- event loops: a cached model works under every asyncio.run --------------------------------


def test_three_event_loops_in_one_process_against_a_keep_alive_server(make_wire_server: ServerFactory, tmp_path: Path) -> None:
    """Each ``asyncio.run`` closes its loop; the cached chat models must not reuse its connections (issue 20, finding 11).

    The wire server keeps connections alive (HTTP/1.1, as vLLM, llama.cpp and OpenAI do), so
    the second run used to fail with ``RuntimeError: Event loop is closed`` inside ``bid``.
    The async runs, with the pool given as a file, never block their loop (blockbuster):
    the real chat models are built off the loop (issue 20, finding 9).
    """
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    blockbuster = pytest.importorskip("blockbuster")
    server = make_wire_server({"a": behaviour(), "b": behaviour()})
    path = tmp_path / "pool.toml"
    path.write_text("".join(f'[[agents]]\nname = "{n}"\nmodel = "{n}"\nbase_url = "{server.base_url}"\nprice_input = {p}\n'
                            f"price_output = {p}\ntimeout_s = 10.0\n" for n, p in (("a", 0.1), ("b", 0.05))), encoding="utf-8")
    graph = build_sale_graph(tools=[]).compile()
    context = SaleContext(pool=str(path), use_memory=False)
    with blockbuster.blockbuster_ctx():
        outs = [asyncio.run(graph.ainvoke({"task": TASK}, context=context)) for _ in range(3)]
        outs.append(graph.invoke({"task": TASK}, context=context))  # and a blocking run after them
        with ThreadPoolExecutor(2) as workers:  # and two loops at once, one per worker thread
            outs += workers.map(lambda _: asyncio.run(graph.ainvoke({"task": TASK}, context=context)), range(2))
    for out in outs:
        assert out["answer"] == "Canberra" and [b["status"] for b in out["bids"]] == ["ok", "ok"]
        assert all(v["status"] == "ok" for v in out["votes"])
    assert len(chats(server, "execute")) == 6
    assert max(server.connections()) > 1  # connections were kept alive and reused within a run

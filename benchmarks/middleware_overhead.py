"""What ``SaleMiddleware`` adds to a ``create_agent`` run, side by side with the same agent without it.

For each task the agent runs twice: without the middleware, on the model the auction
picks (so the two runs make the same agent calls), then with ``SaleMiddleware``. Printed
per task: the auction's model calls and tokens (bids and votes, input + output), the
agent's own tokens, the wall time of both runs, the overhead (seconds and ratio), and the
wall time of the same route-only auction run alone (what the middleware adds beyond it
is its own cost).

1. The contract tests' wire server (loopback, every call answered after a fixed latency;
   two agents, the agent calls the ``add`` tool once, natively, then answers).
2. With ``--embedded``: the embedded pool (llama.cpp on loopback; started if it is not
   being served, and stopped again only if this script started it), no tools.

    python -m benchmarks.middleware_overhead [--latency 0.1] [--tasks 5] [--embedded --embedded-tasks 3]

The auction runs with memory off (no refinement) and the per-bid jury: |A| bids and
|A|^2 votes, each round in parallel.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage

from sale_graph import AgentPool, AgentSpec, SaleMiddleware, build_sale_graph
from sale_graph.jury.ask import forget_detected
from tests.contract.sale_apps import add, agent_fields, behaviours, native_tool_calls
from tests.contract.wire_server import WireServer

WIRE_TASKS = [f"What is {a} + {b}? Use the add tool." for a, b in ((2, 3), (7, 5), (11, 4), (9, 9), (13, 8), (6, 1))]
EMBEDDED_TASKS = [
    "What is the capital of Australia?",
    "Which planet in the solar system has the most moons?",
    "Who wrote the novel 'Pride and Prejudice'?",
    "In which year did the first human land on the Moon?",
]
AUCTION_PHASES = ("bid", "jury", "refine")


def _tokens(entries: Sequence[dict[str, Any]]) -> int:
    return sum(e["input_tokens"] + e["output_tokens"] for e in entries)


def _message_tokens(messages: Sequence[Any]) -> int:
    return sum(int(m.usage_metadata["total_tokens"]) for m in messages if isinstance(m, AIMessage) and m.usage_metadata)


def measure(task: str, pool: AgentPool, tools: list[Any], middleware: SaleMiddleware,
            model_of: Callable[[AgentSpec], Any]) -> dict[str, Any]:
    """One task: the agent with the middleware, then without it on the model the auction chose, then the auction alone."""
    auction_graph = build_sale_graph(tools=tools).compile()
    inputs: Any = {"messages": [HumanMessage(task)]}
    with_sale = create_agent(model=model_of(pool.agents[0]), tools=tools, middleware=[middleware])
    t0 = time.perf_counter()
    out = with_sale.invoke(inputs)
    t_with = time.perf_counter() - t0
    ledger = out["sale_auction"]["ledger"]
    winner = pool.get(out["sale_auction"]["selection"]["winner"])
    bare = create_agent(model=model_of(winner), tools=tools)
    t0 = time.perf_counter()
    plain = bare.invoke(inputs)
    t_without = time.perf_counter() - t0
    t0 = time.perf_counter()  # the same route-only auction alone, outside any agent
    auction_graph.invoke({"task": task}, context=middleware.context)
    t_auction = time.perf_counter() - t0
    auction = [e for e in ledger if e["phase"] in AUCTION_PHASES]
    return {
        "task": task[:34], "winner": winner.name, "auction_calls": len(auction), "auction_tok": _tokens(auction),
        "agent_tok_with": _tokens([e for e in ledger if e["phase"] == "execute"]),
        "agent_tok_without": _message_tokens(plain["messages"]),
        "s_without": t_without, "s_with": t_with, "overhead_s": t_with - t_without, "ratio": t_with / t_without,
        "s_auction": t_auction,
    }


def report(title: str, rows: list[dict[str, Any]]) -> None:
    """Print the rows and their medians side by side."""
    print(f"\n{title}")
    head = (f"{'task':34} {'winner':13} {'auct calls':>10} {'auct tok':>9} {'agent tok':>10} "
            f"{'no SALE s':>9} {'SALE s':>8} {'+s':>7} {'x':>6} {'auction s':>9}")
    print(head)
    print("-" * len(head))
    for r in rows:
        agent_tok = f"{r['agent_tok_with']}/{r['agent_tok_without']}"
        print(f"{r['task']:34} {r['winner']:13} {r['auction_calls']:>10} {r['auction_tok']:>9} {agent_tok:>10} "
              f"{r['s_without']:>9.3f} {r['s_with']:>8.3f} {r['overhead_s']:>7.3f} {r['ratio']:>6.2f} {r['s_auction']:>9.3f}")
    keys = ("auction_tok", "s_without", "s_with", "overhead_s", "ratio", "s_auction")
    med = {k: statistics.median(r[k] for r in rows) for k in keys}
    share = statistics.median(r["auction_tok"] / (r["auction_tok"] + r["agent_tok_with"]) for r in rows)
    print(f"{'median':34} {'':13} {'':>10} {med['auction_tok']:>9.0f} {'':>10} {med['s_without']:>9.3f} "
          f"{med['s_with']:>8.3f} {med['overhead_s']:>7.3f} {med['ratio']:>6.2f} {med['s_auction']:>9.3f}")
    print(f"auction share of the run's tokens (median): {share:.0%}. agent tok: with SALE / without (the strategy "
          "in the system prompt of each call); auction s: the same route-only auction alone, without an agent")


def wire(latency: float, tasks: int) -> None:
    """The wire server with a fixed latency per call."""
    patch = pytest.MonkeyPatch()
    native_tool_calls(patch)
    forget_detected()
    try:
        with WireServer(behaviours(latency_s=latency)) as server:
            pool = AgentPool(tuple(AgentSpec(**f) for f in agent_fields(server)), source="wire server")
            middleware = SaleMiddleware(pool=pool, use_memory=False, check_endpoints=False, tools=[add])

            def model_of(spec: AgentSpec) -> Any:
                return spec.chat_model(phase="execute", logprobs=False)

            measure(WIRE_TASKS[0], pool, [add], middleware, model_of)  # warm-up: imports, connections
            rows = [measure(t, pool, [add], middleware, model_of) for t in WIRE_TASKS[:tasks]]
        report(f"Wire server, {latency:.2f} s per call, 2 agents, agent = 1 tool call + 1 answer", rows)
    finally:
        patch.undo()
        forget_detected()


def embedded(tasks: int) -> None:
    """The embedded pool (two small llama.cpp models), no tools, short caps."""
    from sale_graph import EmbeddedServer, embedded_pool

    server = EmbeddedServer()
    started = not server.running()
    if started:
        print("starting the embedded model servers...")
        server.start()
    try:
        pool = embedded_pool()
        answer_cap = 64
        middleware = SaleMiddleware(pool=pool, use_memory=False, bid_max_tokens=48, jury_max_tokens=8,
                                    execute_step_max_tokens=answer_cap)

        def model_of(spec: AgentSpec) -> Any:
            return spec.chat_model(phase="execute", max_tokens=answer_cap, logprobs=False)

        measure(EMBEDDED_TASKS[0], pool, [], middleware, model_of)  # warm-up
        rows = [measure(t, pool, [], middleware, model_of) for t in EMBEDDED_TASKS[:tasks]]
        report("Embedded pool (SmolLM2-135M, Gemma-3-270m on llama.cpp), no tools, bid 48 / jury 8 / answer 64 tokens", rows)
    finally:
        if started:
            server.stop()


def main() -> None:
    """Parse the arguments and run the measurements."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.1, help="wire server latency per call, seconds (default 0.1)")
    parser.add_argument("--tasks", type=int, default=5, help="tasks on the wire server (default 5)")
    parser.add_argument("--embedded", action="store_true", help="also measure on the embedded pool")
    parser.add_argument("--embedded-tasks", type=int, default=3, help="tasks on the embedded pool (default 3)")
    args = parser.parse_args()
    wire(args.latency, args.tasks)
    if args.embedded:
        embedded(args.embedded_tasks)


if __name__ == "__main__":
    main()

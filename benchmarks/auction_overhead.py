"""Auction overhead on the embedded pool: the auction's tokens and wall time against the execution's,
and the parallel fan-out against the same calls made one by one, measured side by side in one run.

    python benchmarks/auction_overhead.py [--tasks N] [--pool POOL.toml]

The embedded pool is started (and stopped) if it is not already being served.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
from typing import Any

from sale_graph import SaleContext, build_sale_graph, load_pool
from sale_graph.cli.report import ledger_totals
from sale_graph.embedded import EmbeddedServer, embedded_pool
from sale_graph.runner import run_auction

TASKS = [
    "What is the capital of Australia?",
    "Write a Python function that returns the n-th Fibonacci number.",
    "Which planet in the solar system has the most moons?",
    "Who wrote the novel 'Pride and Prejudice'?",
    "Write a Python function that checks whether a string is a palindrome.",
    "In which year did the first human land on the Moon?",
]


def _bid_tokens(state: dict) -> dict[str, int]:
    return {e["agent"]: e["output_tokens"] for e in state["ledger"] if e["phase"] == "bid"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=5, help="how many tasks (default 5)")
    parser.add_argument("--pool", help="pool TOML (default: the embedded pool)")
    args = parser.parse_args()
    server = None
    if args.pool is None:
        server = EmbeddedServer()
        if not server.running():
            print("starting the embedded model servers...", file=sys.stderr)
            server.start()
    try:
        base = embedded_pool() if args.pool is None else load_pool(args.pool)
        # Greedy decoding, so the parallel and the one-by-one runs make the same calls.
        pool = dataclasses.replace(base, agents=tuple(dataclasses.replace(a, temperature=0.0) for a in base.agents))
        graph = build_sale_graph().compile()
        rows: list[dict[str, Any]] = []
        for task in TASKS[: args.tasks]:
            par = run_auction(task, SaleContext(pool=pool, use_memory=False, max_concurrency=8), graph=graph)
            seq = run_auction(task, SaleContext(pool=pool, use_memory=False, max_concurrency=1, check_endpoints=False), graph=graph)
            t = ledger_totals(par.state["ledger"])
            exec_tokens = t.total_tokens - t.auction_tokens
            rows.append({
                "task": task[:38], "auction_tok": t.auction_tokens, "exec_tok": exec_tokens,
                "tok_share": t.auction_token_share, "auction_s": par.timings["auction"], "exec_s": par.timings["execute"],
                "time_share": par.timings["auction"] / par.timings["total"],
                "seq_auction_s": seq.timings["auction"], "speedup": seq.timings["auction"] / par.timings["auction"],
                "calls": sum(1 for e in par.state["ledger"] if e["phase"] in ("bid", "jury")),
                "same_tokens": _bid_tokens(seq.state) == _bid_tokens(par.state),
            })
        print(f"pool: {', '.join(f'{a.name} (${a.price}/1M)' for a in pool.agents)}")
        head = (f"{'task':<40}{'calls':>6}{'auct tok':>9}{'exec tok':>9}{'tok %':>7}{'auct s':>8}{'exec s':>8}"
                f"{'time %':>8}{'1-by-1 s':>9}{'par x':>7}{'same':>6}")
        print(head)
        print("-" * len(head))
        for r in rows:
            print(f"{r['task']:<40}{r['calls']:>6}{r['auction_tok']:>9}{r['exec_tok']:>9}{r['tok_share']:>7.1%}"
                  f"{r['auction_s']:>8.1f}{r['exec_s']:>8.1f}{r['time_share']:>8.1%}{r['seq_auction_s']:>9.1f}{r['speedup']:>7.2f}"
                  f"{'yes' if r['same_tokens'] else 'no':>6}")
        print("-" * len(head))
        tot_a = sum(r["auction_tok"] for r in rows)
        tot_e = sum(r["exec_tok"] for r in rows)
        print(f"auction share of tokens: {tot_a / (tot_a + tot_e):.1%} ({tot_a} of {tot_a + tot_e})")
        print(f"auction share of wall time: median {statistics.median(r['time_share'] for r in rows):.1%}")
        print("('same': greedy decoding gave identical bids in both runs; jury prompts differ only by their random delimiter)")
        print("(each embedded model is one single-threaded llama.cpp server: calls to the same model queue, so the")
        print(" fan-out overlaps the two models' calls and the ceiling on 2 cores is x2, less when one model is slower)")
        print(f"parallel fan-out vs one by one (auction wall time): median speed-up x{statistics.median(r['speedup'] for r in rows):.2f}")
    finally:
        if server is not None:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Missing jury votes on the embedded pool: text answers (``SCORE: n``) against structured answers
(``response_format={"type": "json_object", "schema": ...}``), side by side in one run.

    python benchmarks/jury_votes.py [--tasks N] [--json OUT.json]

Each task's bids are recorded once (one bid per agent, :func:`sale_graph.nodes.bid.make_bid`);
then every judge scores every successful bid twice, once per answer format, through the
library's own jury node (:func:`sale_graph.nodes.jury.make_jury_node`, called outside a graph)
on a pool whose agents have ``structured_output`` forced (``dataclasses.replace``) to
``"none"`` or ``"json_object"``, so both formats see the same tasks and the same bids.
Each judge's calls run one at a time in its own thread (one llama.cpp server per model),
alternating the two formats, so both formats meet the same server load. A vote is missing
when the call failed or the answer held no usable 0-5 score; the reasons are tallied.

The embedded servers are started (and stopped afterwards) if nothing serves them yet;
servers someone else runs are used as they are and left running.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import re
import statistics
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from langgraph.runtime import Runtime

from sale_graph.context import SaleContext
from sale_graph.embedded import EmbeddedServer, embedded_pool
from sale_graph.nodes.bid import make_bid
from sale_graph.nodes.jury import JuryTask, make_jury_node
from sale_graph.pool import AgentPool, AgentSpec
from sale_graph.prompts import bid_messages
from sale_graph.services import SaleServices
from sale_graph.state import Bid, JuryVote

# (task, domain): short questions and coding prompts written for this benchmark.
TASKS: list[tuple[str, str]] = [
    ("What is the capital of Australia?", "search"),
    ("Which planet in the solar system has the most moons?", "search"),
    ("Who wrote the novel 'Pride and Prejudice'?", "search"),
    ("In which year did the first human land on the Moon?", "search"),
    ("What is the chemical symbol of gold?", "search"),
    ("Which river flows through Budapest?", "search"),
    ("Who painted the ceiling of the Sistine Chapel?", "search"),
    ("What is the tallest mountain in Africa?", "search"),
    ("Which country won the FIFA World Cup in 2014?", "search"),
    ("How many bones are in the adult human body?", "search"),
    ("Who composed the Moonlight Sonata, and in which year was he born?", "search"),
    ("Write a Python function that returns the n-th Fibonacci number.", "coding"),
    ("Write a Python function that checks whether a string is a palindrome.", "coding"),
    ("Write a Python function that merges overlapping intervals.", "coding"),
    ("Implement binary search over a sorted list in Python.", "coding"),
    ("Write a Python function that counts the vowels in a string.", "coding"),
    ("Write a Python function that returns the largest prime factor of n.", "coding"),
    ("Write a Python function that flattens a nested list of integers.", "coding"),
    ("Write a Python function that reverses the words of a sentence.", "coding"),
    ("Write a Python function that checks whether two strings are anagrams.", "coding"),
    ("Write a Python function that converts a Roman numeral to an integer.", "coding"),
    ("Write a Python function that returns the GCD of two integers.", "coding"),
]

TOOL_NAMES: dict[str, list[str]] = {"search": ["web_search"], "coding": ["run_python", "run_tests"]}
FORMATS: tuple[str, ...] = ("none", "json_object")  # structured_output modes: text answers, then JSON answers
LABEL: dict[str, str] = {"none": "text (SCORE: n)", "json_object": "json_object+schema"}


@dataclasses.dataclass
class VoteRecord:
    """One jury call of the benchmark: which format, its vote and how long it took."""

    mode: str
    task: int
    judge: str
    bidder: str
    vote: JuryVote
    seconds: float


def reason_bucket(reason: str) -> str:
    """A missing vote's reason with the judge's numbers folded to N (the scale "0-5" kept), so reasons group."""
    scale = "\0SCALE\0"
    folded = re.sub(r"\d+(?:\.\d+)?", "N", reason.replace("0-5", scale)).replace(scale, "0-5")
    return folded[:120]


def record_bids(pool: AgentPool, ctx: SaleContext, services: SaleServices, tasks: Sequence[tuple[str, str]]) -> list[list[Bid]]:
    """Every agent's original bid for every task (the agents bid in parallel, one server each)."""
    out: list[list[Bid]] = []
    with ThreadPoolExecutor(max_workers=len(pool.agents)) as workers:
        for i, (task, domain) in enumerate(tasks):
            messages = bid_messages(task, TOOL_NAMES[domain])
            futures = [workers.submit(make_bid, agent, list(messages), "original", "bid", ctx, services) for agent in pool.agents]
            bids = [f.result()[0] for f in futures]
            out.append(bids)
            summary = ", ".join(f"{b['agent']}: {b['tokens']} tok" if b["status"] == "ok" else f"{b['agent']}: FAILED" for b in bids)
            print(f"  bids {i + 1:>2}/{len(tasks)}: {summary}", file=sys.stderr, flush=True)
    return out


def forced_pool(pool: AgentPool, mode: str) -> AgentPool:
    """``pool`` with every agent's ``structured_output`` set to ``mode``."""
    agents = tuple(dataclasses.replace(a, structured_output=mode) for a in pool.agents)  # type: ignore[arg-type]
    return dataclasses.replace(pool, agents=agents)


def judge_bid(item: JuryTask, ctx: SaleContext, services: SaleServices) -> JuryVote:
    """One vote through the library's jury node, called outside a graph (no stream writer)."""
    update = make_jury_node(services)(item, runtime=Runtime(context=ctx))
    vote: JuryVote = update["votes"][0]
    return vote


def judge_all(judge: AgentSpec, contexts: dict[str, SaleContext], services: SaleServices, tasks: Sequence[tuple[str, str]],
              bids: Sequence[Sequence[Bid]]) -> list[VoteRecord]:
    """All of one judge's votes, both formats, one call at a time, formats alternating per bid."""
    records: list[VoteRecord] = []
    n_judged = 0
    for i, ((task, _domain), task_bids) in enumerate(zip(tasks, bids, strict=True)):
        for bid in task_bids:
            if bid["status"] != "ok":
                continue
            item = JuryTask(auction_id=f"jury-votes-{i}", judge=judge.name, bidder=bid["agent"], round="original", task=task,
                            strategy=bid["strategy"])
            order = FORMATS if n_judged % 2 == 0 else tuple(reversed(FORMATS))
            n_judged += 1
            for mode in order:
                start = time.perf_counter()
                vote = judge_bid(item, contexts[mode], services)
                records.append(VoteRecord(mode, i, judge.name, bid["agent"], vote, time.perf_counter() - start))
        print(f"  jury {judge.name}: task {i + 1}/{len(tasks)} done", file=sys.stderr, flush=True)
    return records


def summarise(records: Sequence[VoteRecord]) -> dict[str, dict[str, Any]]:
    """Per format: votes, missing votes, missing share, reasons, mean seconds per vote, per-judge missing."""
    table: dict[str, dict[str, Any]] = {}
    for mode in FORMATS:
        rows = [r for r in records if r.mode == mode]
        missing = [r for r in rows if r.vote["status"] != "ok"]
        reasons = collections.Counter(reason_bucket(r.vote["reason"]) for r in missing)
        by_judge = {j: f"{sum(1 for r in missing if r.judge == j)}/{sum(1 for r in rows if r.judge == j)}"
                    for j in sorted({r.judge for r in rows})}
        formats = collections.Counter(str(r.vote.get("answer_format")) for r in rows)
        table[mode] = {
            "label": LABEL[mode], "votes": len(rows), "missing": len(missing),
            "missing_share": len(missing) / len(rows) if rows else 0.0,
            "reasons": dict(reasons.most_common()), "mean_s": statistics.fmean(r.seconds for r in rows) if rows else 0.0,
            "by_judge": by_judge, "answer_formats": dict(formats),
            "mean_likert": statistics.fmean(float(r.vote["likert"]) for r in rows if r.vote["likert"] is not None)
            if len(missing) < len(rows) else None,
        }
    return table


def print_table(table: dict[str, dict[str, Any]], n_tasks: int, n_bids: int, pool: AgentPool) -> None:
    """The side-by-side table, the reasons histogram and the ratio of missing shares."""
    print(f"pool: {', '.join(a.name for a in pool.agents)} (embedded); {n_tasks} tasks, {n_bids} successful bids, "
          f"every judge scores every bid in both formats")
    head = f"{'format':<22}{'votes':>7}{'missing':>9}{'missing %':>11}{'mean s/vote':>13}{'mean score':>12}  missing by judge"
    print(head)
    print("-" * len(head))
    for row in table.values():
        score = f"{row['mean_likert']:.2f}" if row["mean_likert"] is not None else "-"
        judges = ", ".join(f"{j} {v}" for j, v in row["by_judge"].items())
        print(f"{row['label']:<22}{row['votes']:>7}{row['missing']:>9}{row['missing_share']:>11.1%}"
              f"{row['mean_s']:>13.2f}{score:>12}  {judges}")
    print("-" * len(head))
    for row in table.values():
        print(f"reasons for missing votes, {row['label']} (answer_format recorded: {row['answer_formats']}):")
        if not row["reasons"]:
            print("    (none)")
        for reason, n in row["reasons"].items():
            print(f"  {n:>4}  {reason}")
    text, structured = table["none"], table["json_object"]
    if structured["missing_share"] > 0:
        print(f"ratio of missing shares, text / structured: {text['missing_share'] / structured['missing_share']:.2f}")
    else:
        print(f"ratio of missing shares, text / structured: inf (text {text['missing_share']:.1%}, structured 0.0%)")
    if structured["mean_s"] > 0:
        print(f"ratio of mean seconds per vote, structured / text: {structured['mean_s'] / text['mean_s']:.2f}")


def main(argv: Sequence[str] | None = None) -> int:
    """Record the bids, run the jury in both formats, print the table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tasks", type=int, default=len(TASKS), help=f"how many tasks (default {len(TASKS)}, at least 20 for the report)")
    parser.add_argument("--json", help="also write the raw votes and the table to this JSON file")
    args = parser.parse_args(argv)
    tasks = TASKS[: args.tasks]
    server = EmbeddedServer()
    if not server.running():
        print("starting the embedded model servers...", file=sys.stderr, flush=True)
        server.start()
    try:
        pool = embedded_pool()
        ctx = SaleContext(pool=pool, check_endpoints=False, use_memory=False, max_concurrency=len(pool.agents))
        services = SaleServices()
        start = time.perf_counter()
        bids = record_bids(pool, ctx, services, tasks)
        bid_s = time.perf_counter() - start
        contexts = {mode: dataclasses.replace(ctx, pool=forced_pool(pool, mode)) for mode in FORMATS}
        with ThreadPoolExecutor(max_workers=len(pool.agents)) as workers:
            futures = [workers.submit(judge_all, judge, contexts, services, tasks, bids) for judge in pool.agents]
            records = [r for f in futures for r in f.result()]
        jury_s = time.perf_counter() - start - bid_s
    finally:
        server.stop()  # stops only the servers this script started
    n_bids = sum(1 for task_bids in bids for b in task_bids if b["status"] == "ok")
    table = summarise(records)
    print_table(table, len(tasks), n_bids, pool)
    print(f"wall time: bids {bid_s:.0f} s, jury (both formats) {jury_s:.0f} s")
    if args.json:
        raw = [{**dataclasses.asdict(r)} for r in records]
        Path(args.json).write_text(json.dumps({"table": table, "votes": raw, "bids": bids}, indent=2, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

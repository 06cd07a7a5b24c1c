"""The ``sale bench`` sub-commands' arguments (the handlers are in :mod:`sale_graph.bench.cli.commands`)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from typing import Any

from sale_graph.bench.fit.defaults import DEFAULT_CVAR_ALPHA, DEFAULT_GAP, DEFAULT_OBJECTIVE, DEFAULT_TOLERANCE, OBJECTIVES
from sale_graph.bench.tasks.schema import DEFAULT_DEV_FRACTION

Handler = Callable[[argparse.Namespace], int]


def positive_int(text: str) -> int:
    """An argument type: a count of at least 1 (``sale``'s own is in ``sale_graph.cli.args``, which imports this package)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _floats(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tasks", required=True, help="task JSONL (see `sale bench tasks`)")
    p.add_argument("--pool", help="pool TOML (default: the embedded local pool, started if needed)")
    p.add_argument("--out", required=True, help="output JSONL log (appended to; reruns resume)")
    p.add_argument("--limit", type=positive_int, help="only the first N tasks (after the split filter)")
    p.add_argument("--corpus", help="local search corpus for the search tool (default: the offline Wikipedia corpus)")
    p.add_argument("--bid-max-tokens", type=int, default=None, help="default: each agent's own cap from the pool, else 1024")
    p.add_argument("--jury-max-tokens", type=int, default=None, help="default: each agent's own cap from the pool, else 512")
    p.add_argument("--execute-step-max-tokens", type=int, default=None, help="default: each agent's own cap, else 4096")
    p.add_argument("--execute-max-steps", type=positive_int, default=6)
    p.add_argument("--execute-max-tokens", type=positive_int, default=2048)
    p.add_argument("--execute-wall-time-s", type=float, default=300.0)
    p.add_argument("--max-concurrency", type=positive_int, default=4, help="model calls in flight at once (default 4)")
    p.add_argument("--jobs", type=positive_int, default=1, help="tasks worked on at once (default 1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _add_fit(sub: Any, handler: Handler) -> None:
    f = sub.add_parser("fit", help="learn the auction weights on the log's dev split (two-stage MILP) and refit the ablations")
    f.add_argument("--log", required=True)
    f.add_argument("--out", required=True, help="weights JSON to write")
    f.add_argument("--objective", choices=OBJECTIVES, default=DEFAULT_OBJECTIVE,
                   help=f"stage-1 objective (default {DEFAULT_OBJECTIVE}; see docs/benchmarks.md for why)")
    f.add_argument("--cvar-alpha", type=float, default=DEFAULT_CVAR_ALPHA, help="CVaR level: mean of the worst 1-alpha of tasks")
    f.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                   help="stage 2 keeps the stage-1 objective within this much of its value (regret units)")
    f.add_argument("--gap", type=float, default=DEFAULT_GAP, help="relative MIP gap each stage is solved to")
    f.add_argument("--split", default="dev", choices=["dev", "test", "all"],
                   help="tasks to fit on (recorded in the file; the report refuses weights fitted on what it evaluates)")
    f.add_argument("--fail-penalty", type=float, default=2.0)
    f.add_argument("--w-max", type=float, default=1.0)
    f.add_argument("--time-limit", type=float, default=120.0, help="seconds per MILP stage (best solution kept)")
    f.add_argument("--no-ablations", action="store_true", help="fit SALE only (the report then shows no ablations)")
    f.set_defaults(func=handler)


def _add_report(sub: Any, handler: Handler) -> None:
    p = sub.add_parser("report", help="replay every router on a market log (and report live runs); tables, JSON, figures")
    p.add_argument("--log", required=True, action="append",
                   help="market log and/or live log (repeatable: a market log and a `sale bench live` log together)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--weights", help="SALE weights from `sale bench fit` (with its refitted ablations; default: defaults)")
    p.add_argument("--weights-mean", help="weights fitted with --objective mean (replaces the file's mean-objective ablation)")
    p.add_argument("--split", default="test", choices=["test", "dev", "all"])
    p.add_argument("--allow-fitted-on-eval", action="store_true",
                   help="go on with weights fitted on evaluated tasks (the report is stamped)")
    p.add_argument("--no-text-routers", action="store_true", help="skip kNN/MLP (no embeddings)")
    p.add_argument("--no-figures", action="store_true")
    p.set_defaults(func=handler)


def _add_synthetic(sub: Any, synthetic: Handler, sweep: Handler) -> None:
    s = sub.add_parser("synthetic", help="write a SYNTHETIC market log whose signal quality you choose")
    s.add_argument("--out", required=True, help="log JSONL to write (its embedding cache goes next to it)")
    s.add_argument("--signal", type=float, required=True, help="Q in [0, 1]: how much entropy and jury say about outcomes")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--tasks", type=positive_int, default=753)
    s.add_argument("--no-plain", action="store_true", help="no plain executions (as `record --no-plain`)")
    s.set_defaults(func=synthetic)
    w = sub.add_parser("sweep", help="SYNTHETIC markets over a signal grid: SALE vs largest agent, kNN, oracle; one figure")
    w.add_argument("--out", required=True, help="output folder (sweep.json, sweep.md, signal_sweep.png)")
    w.add_argument("--signals", type=_floats, default=[0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    w.add_argument("--seeds", type=lambda t: [int(x) for x in t.split(",")], default=[0])
    w.add_argument("--tasks", type=positive_int, default=753)
    w.add_argument("--objectives", type=lambda t: t.split(","), default=[DEFAULT_OBJECTIVE],
                   help=f"comma-separated; the first is plotted (default {DEFAULT_OBJECTIVE})")
    w.add_argument("--time-limit", type=float, default=15.0, help="seconds per MILP stage")
    w.add_argument("--gap", type=float, default=1e-4)
    w.set_defaults(func=sweep)


def add_commands(sub: Any, handlers: Mapping[str, Handler]) -> None:
    """Add every ``sale bench`` sub-command to ``sub`` with its handler from ``handlers``."""
    t = sub.add_parser("tasks", help="export offline task sets (HumanEval, FanOutQA, trivia) to JSONL")
    t.add_argument("--source", action="append", help="humaneval, fanoutqa-leaves, fanoutqa or trivia (repeatable)")
    t.add_argument("--include", action="append", help="a user's task JSONL to validate and add (repeatable)")
    t.add_argument("--limit", type=positive_int, help="at most N tasks per source (deterministic sample over bins)")
    t.add_argument("--seed", default="0", help="sampling seed (default 0)")
    t.add_argument("--dev-fraction", type=float, default=DEFAULT_DEV_FRACTION, help="share of tasks in dev (default 0.3)")
    t.add_argument("--trivia-dir", help="folder of Red-Trivia YAML lists (default: the installed Red-Trivia package)")
    t.add_argument("--out", required=True, help="output JSONL")
    t.set_defaults(func=handlers["tasks"])

    r = sub.add_parser("record", help="run the whole pool on every task and log the market (resumable)")
    _add_run_options(r)
    r.add_argument("--split", default="all", choices=["all", "dev", "test"])
    r.add_argument("--no-plain", action="store_true",
                   help="skip the plain executions (baselines are then charged for the plan they follow)")
    r.add_argument("--no-classifier", action="store_true",
                   help="skip the one text-classifier call per task (the report's llm-classifier router)")
    r.add_argument("--classifier", metavar="AGENT", help="the classifier agent (default: the pool's cheapest)")
    r.add_argument("--criteria", metavar="FILE", help="JSON {agent: description} added to each agent's criteria")
    r.set_defaults(func=handlers["record"])

    _add_fit(sub, handlers["fit"])
    _add_report(sub, handlers["report"])

    lv = sub.add_parser("live", help="SALE with memory, for real, on the test split in seeded task orders (slow)")
    _add_run_options(lv)
    lv.add_argument("--split", default="test", choices=["all", "dev", "test"])
    lv.add_argument("--orders", type=positive_int, default=1, help="task orders, each with a fresh memory (default 1)")
    lv.add_argument("--seed", type=int, default=0, help="seed of the task orders")
    lv.add_argument("--weights")
    lv.add_argument("--memory-dir", help="memory folder, one sub-folder per order (default: next to --out)")
    lv.set_defaults(func=handlers["live"])

    _add_synthetic(sub, handlers["synthetic"], handlers["sweep"])

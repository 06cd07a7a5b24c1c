"""The ``sale bench`` command group: tasks, record, fit, report, live.

The main ``sale`` CLI calls :func:`register_bench_commands` with its
sub-parsers; ``python -m sale_graph.bench ...`` (or ``python -m
sale_graph.bench.commands ...``) runs the same commands standalone, without the
``bench`` word.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from sale_graph.bench.tasks import DEFAULT_DEV_FRACTION


def _load_tasks(args: argparse.Namespace) -> list[Any]:
    from sale_graph.bench.tasks import read_tasks

    tasks = read_tasks(args.tasks)
    if getattr(args, "split", "all") != "all":
        tasks = [t for t in tasks if t.split == args.split]
    if getattr(args, "limit", None):
        tasks = tasks[: args.limit]
    if not tasks:
        raise SystemExit(f"error: no task of split {args.split!r} in {args.tasks}")
    return tasks


def _settings(args: argparse.Namespace) -> Any:
    from sale_graph.bench.record import RecordSettings

    return RecordSettings(
        bid_max_tokens=args.bid_max_tokens, jury_max_tokens=args.jury_max_tokens,
        execute_step_max_tokens=args.execute_step_max_tokens, execute_max_steps=args.execute_max_steps,
        execute_max_tokens=args.execute_max_tokens, execute_wall_time_s=args.execute_wall_time_s,
        max_concurrency=args.max_concurrency, jobs=args.jobs,
    )


class _Servers:
    """Start the embedded pool's servers when no pool file is given (and stop the ones started)."""

    def __init__(self, pool_arg: str | None) -> None:
        self.pool_arg = pool_arg
        self.server: Any = None

    def __enter__(self) -> Any:
        from sale_graph.embedded import EmbeddedServer, embedded_pool
        from sale_graph.pool import check_pool, load_pool

        pool = embedded_pool() if self.pool_arg is None else load_pool(self.pool_arg)
        if self.pool_arg is None:
            self.server = EmbeddedServer()
            if not self.server.running():
                print("starting the embedded model servers (llama.cpp, loopback)...", file=sys.stderr)
                self.server.start()
        check_pool(pool)
        return pool

    def __exit__(self, *exc: object) -> None:
        if self.server is not None:
            self.server.stop()


def cmd_tasks(args: argparse.Namespace) -> int:
    """Export offline task sets (or validate a user's file) to one JSONL file."""
    from sale_graph.bench.datasets import load_sources
    from sale_graph.bench.tasks import read_tasks, write_tasks

    tasks = load_sources(args.source, limit_per_source=args.limit, dev_fraction=args.dev_fraction, seed=args.seed,
                         paths={"trivia": args.trivia_dir} if args.trivia_dir else None) if args.source else []
    for extra in args.include or []:
        tasks += read_tasks(extra, dev_fraction=args.dev_fraction)
    if not tasks:
        raise SystemExit("error: nothing to export; give --source NAME (humaneval, fanoutqa-leaves, fanoutqa, trivia) or --include FILE")
    ids = [t.id for t in tasks]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise SystemExit(f"error: duplicate task ids across sources: {', '.join(dup[:5])}")
    n = write_tasks(tasks, args.out)
    counts: dict[str, int] = {}
    for t in tasks:
        key = f"{t.domain}/{t.bin_label}/{t.split} ({t.bin_source})"
        counts[key] = counts.get(key, 0) + 1
    print(f"wrote {n} tasks to {args.out}")
    for key in sorted(counts):
        print(f"  {counts[key]:5d}  {key}")
    return 0


def cmd_record(args: argparse.Namespace) -> int:
    """Record the full market (bids, jury matrix, every agent's graded execution) for every task."""
    from sale_graph.bench.record import record_tasks

    tasks = _load_tasks(args)
    search = {"backend": "local", "path": args.corpus} if args.corpus else None
    try:
        with _Servers(args.pool) as pool:
            summary = record_tasks(tasks, pool, args.out, _settings(args), search=search, progress=not args.no_progress)
    except KeyboardInterrupt:
        print(f"\ninterrupted: finished tasks are in {args.out}; run the same command again to resume", file=sys.stderr)
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(130)  # do not wait for model calls in flight: every finished record is already fsync'd
    if summary.repaired_bytes:
        print(f"repaired {args.out}: removed a partial last line ({summary.repaired_bytes} bytes)", file=sys.stderr)
    print(f"recorded {summary.recorded} tasks ({summary.done_before} were already in {args.out}); "
          f"log total ${summary.cost_usd:.6f}")
    return 0


def cmd_fit(args: argparse.Namespace) -> int:
    """Fit the auction weights on the log's dev split (MILP) and write a weights file."""
    from sale_graph.bench.market import Market
    from sale_graph.bench.weights_fit import fit_weights

    market = Market.from_log(args.log)
    result = fit_weights(market, objective=args.objective, split=args.split, fail_penalty=args.fail_penalty,
                         w_max=args.w_max, time_limit_s=args.time_limit)
    result.save(args.out)
    m = result.meta
    print(f"fitted {args.objective} weights on {m['dev_tasks']} {args.split} tasks in {m['solve_seconds']:.1f} s ({m['status']})")
    print(f"  objective {m['objective_value']:.6f}; dev regret max {m['max_regret_dev']:.4f}, mean {m['mean_regret_dev']:.4f}")
    print(f"  picks the oracle agent on {_pct(m.get('oracle_agreement_dev'))} of dev and {_pct(m.get('oracle_agreement_test'))} of test tasks; "
          f"pass@1 dev {_pct(m.get('pass_at_1_dev'))}, test {_pct(m.get('pass_at_1_test'))}")
    print(f"  weights: {json.dumps(result.weights.to_dict())}")
    print(f"wrote {args.out}")
    return 0


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


def cmd_report(args: argparse.Namespace) -> int:
    """Replay every router on the log and write the tables, JSON results and figures."""
    from sale_graph.bench.report import run_report

    rep, paths, seconds = run_report(args.log, args.out, weights=args.weights, weights_mean=args.weights_mean,
                                     split=args.split, text_routers=not args.no_text_routers, figures=not args.no_figures)
    print(f"report on {rep['meta']['tasks']} {args.split} tasks in {seconds:.2f} s; bins: {', '.join(rep['meta']['bin_sources'])}")
    for p in paths:
        print(f"  {p}")
    return 0


def cmd_live(args: argparse.Namespace) -> int:
    """Run SALE with memory for real on the test split, in task order (slow)."""
    from sale_graph.bench.live import run_live

    args.split = args.split or "test"
    tasks = _load_tasks(args)
    search = {"backend": "local", "path": args.corpus} if args.corpus else None
    try:
        with _Servers(args.pool) as pool:
            s = run_live(tasks, pool, args.out, settings=_settings(args), weights=args.weights, memory_dir=args.memory_dir,
                         search=search, progress=not args.no_progress)
    except KeyboardInterrupt:
        print(f"\ninterrupted: finished tasks are in {args.out}; run again to resume", file=sys.stderr)
        os._exit(130)
    print(f"ran {s.ran} tasks live ({s.done_before} already done): {s.passed} passed, ${s.cost_usd:.6f}")
    return 0


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tasks", required=True, help="task JSONL (see `sale bench tasks`)")
    p.add_argument("--pool", help="pool TOML (default: the embedded local pool, started if needed)")
    p.add_argument("--out", required=True, help="output JSONL log (appended to; reruns resume)")
    p.add_argument("--limit", type=int, help="only the first N tasks (after the split filter)")
    p.add_argument("--corpus", help="local search corpus for the search tool")
    p.add_argument("--bid-max-tokens", type=int, default=160)
    p.add_argument("--jury-max-tokens", type=int, default=24)
    p.add_argument("--execute-step-max-tokens", type=int, default=384)
    p.add_argument("--execute-max-steps", type=int, default=6)
    p.add_argument("--execute-max-tokens", type=int, default=2048)
    p.add_argument("--execute-wall-time-s", type=float, default=300.0)
    p.add_argument("--max-concurrency", type=int, default=4, help="model calls in flight at once (default 4)")
    p.add_argument("--jobs", type=int, default=1, help="tasks worked on at once (default 1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _add_commands(sub: Any) -> None:
    t = sub.add_parser("tasks", help="export offline task sets (HumanEval, FanOutQA, trivia) to JSONL")
    t.add_argument("--source", action="append", help="humaneval, fanoutqa-leaves, fanoutqa or trivia (repeatable)")
    t.add_argument("--include", action="append", help="a user's task JSONL to validate and add (repeatable)")
    t.add_argument("--limit", type=int, help="at most N tasks per source (deterministic sample over bins)")
    t.add_argument("--seed", default="0", help="sampling seed (default 0)")
    t.add_argument("--dev-fraction", type=float, default=DEFAULT_DEV_FRACTION, help="share of tasks in dev (default 0.3)")
    t.add_argument("--trivia-dir", help="folder of Red-Trivia YAML lists (default: the installed Red-Trivia package)")
    t.add_argument("--out", required=True, help="output JSONL")
    t.set_defaults(func=cmd_tasks)

    r = sub.add_parser("record", help="run the whole pool on every task and log the market (resumable)")
    _add_run_options(r)
    r.add_argument("--split", default="all", choices=["all", "dev", "test"])
    r.set_defaults(func=cmd_record)

    f = sub.add_parser("fit", help="learn the auction weights on the log's dev split (min-max MILP)")
    f.add_argument("--log", required=True)
    f.add_argument("--out", required=True, help="weights JSON to write")
    f.add_argument("--objective", choices=["minmax", "mean"], default="minmax")
    f.add_argument("--split", default="dev", choices=["dev", "test", "all"])
    f.add_argument("--fail-penalty", type=float, default=2.0)
    f.add_argument("--w-max", type=float, default=1.0)
    f.add_argument("--time-limit", type=float, default=120.0, help="MILP time limit in seconds (best solution kept)")
    f.set_defaults(func=cmd_fit)

    p = sub.add_parser("report", help="replay every router on the log; tables, JSON and figures")
    p.add_argument("--log", required=True)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--weights", help="SALE weights (default: documented defaults)")
    p.add_argument("--weights-mean", help="weights fitted with --objective mean, for the min-max vs mean ablation")
    p.add_argument("--split", default="test", choices=["test", "dev", "all"])
    p.add_argument("--no-text-routers", action="store_true", help="skip kNN/MLP (no embeddings)")
    p.add_argument("--no-figures", action="store_true")
    p.set_defaults(func=cmd_report)

    lv = sub.add_parser("live", help="SALE with memory, for real, on the test split in task order (slow)")
    _add_run_options(lv)
    lv.add_argument("--split", default="test", choices=["all", "dev", "test"])
    lv.add_argument("--weights")
    lv.add_argument("--memory-dir", help="memory folder (default: next to --out)")
    lv.set_defaults(func=cmd_live)


def register_bench_commands(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``bench`` command group (tasks, record, fit, report, live) to the ``sale`` CLI's sub-parsers."""
    bench = subparsers.add_parser("bench", help="benchmark harness: tasks, record, fit, report, live")
    sub = bench.add_subparsers(dest="bench_command", required=True)
    _add_commands(sub)
    return bench


def build_parser() -> argparse.ArgumentParser:
    """Standalone parser: ``python -m sale_graph.bench <command> ...``."""
    parser = argparse.ArgumentParser(prog="python -m sale_graph.bench", description="SALE benchmark harness.")
    sub = parser.add_subparsers(dest="bench_command", required=True)
    _add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the standalone harness."""
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

"""The ``sale bench`` command group: tasks, record, fit, report, live, synthetic, sweep.

The main ``sale`` CLI calls :func:`register_bench_commands` with its
sub-parsers; ``python -m sale_graph.bench ...`` (or ``python -m
sale_graph.bench.cli.commands ...``) runs the same commands standalone, without the
``bench`` word.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from sale_graph.bench.cli.args import add_commands
from sale_graph.bench.tasks.schema import TaskFileError, read_tasks, write_tasks
from sale_graph.embedded import EmbeddedServer, embedded_pool
from sale_graph.errors import SaleError
from sale_graph.pool import check_pool, load_pool


def _load_tasks(args: argparse.Namespace) -> list[Any]:
    tasks = read_tasks(args.tasks)
    if getattr(args, "split", "all") != "all":
        tasks = [t for t in tasks if t.split == args.split]
    if getattr(args, "limit", None):
        tasks = tasks[: args.limit]
    if not tasks:
        raise TaskFileError(f"no task of split {args.split!r} in {args.tasks}")
    return tasks


def _settings(args: argparse.Namespace) -> Any:
    # lazy: keeps `sale --help` fast (sale_graph.cli imports this module at top)
    from sale_graph.bench.runs.classifier_call import load_criteria
    from sale_graph.bench.runs.record import RecordSettings

    return RecordSettings(
        bid_max_tokens=args.bid_max_tokens, jury_max_tokens=args.jury_max_tokens,
        execute_step_max_tokens=args.execute_step_max_tokens, execute_max_steps=args.execute_max_steps,
        execute_max_tokens=args.execute_max_tokens, execute_wall_time_s=args.execute_wall_time_s,
        max_concurrency=args.max_concurrency, jobs=args.jobs, plain=not getattr(args, "no_plain", False),
        classifier=not getattr(args, "no_classifier", True), classifier_agent=getattr(args, "classifier", None),
        classifier_criteria=load_criteria(getattr(args, "criteria", None)),
    )


class _Servers:
    """Start the embedded pool's servers when no pool file is given (and stop the ones started)."""

    def __init__(self, pool_arg: str | None) -> None:
        self.pool_arg = pool_arg
        self.server: Any = None

    def __enter__(self) -> Any:
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
    # lazy: keeps `sale --help` fast (sale_graph.cli imports this module at top)
    from sale_graph.bench.tasks.datasets import load_sources

    tasks = load_sources(args.source, limit_per_source=args.limit, dev_fraction=args.dev_fraction, seed=args.seed,
                         paths={"trivia": args.trivia_dir} if args.trivia_dir else None) if args.source else []
    for extra in args.include or []:
        tasks += read_tasks(extra, dev_fraction=args.dev_fraction)
    if not tasks:
        raise TaskFileError("nothing to export; give --source NAME (humaneval, fanoutqa-leaves, fanoutqa, trivia) or --include FILE")
    ids = [t.id for t in tasks]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise TaskFileError(f"duplicate task ids across sources: {', '.join(dup[:5])}")
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
    # lazy: keeps `sale --help` fast (sale_graph.cli imports this module at top)
    from sale_graph.bench.runs.record import record_tasks

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


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def cmd_fit(args: argparse.Namespace) -> int:
    """Fit the auction weights on the log's dev split (two-stage MILP), refit the ablations, write a weights file."""
    # lazy: keeps `sale --help` fast (sale_graph.cli imports this module at top)
    from sale_graph.bench.fit.ablations import fit_with_ablations
    from sale_graph.bench.fit.programme import FitError
    from sale_graph.bench.market.market import Market
    from sale_graph.bench.routers.variants import ABLATIONS

    market = Market.from_log(args.log)

    def said(name: str, res: Any) -> None:
        print(f"  {name}: {res.meta['status_detail']}", flush=True)

    try:
        result = fit_with_ablations(
            market, objective=args.objective, ablations=() if args.no_ablations else ABLATIONS, on_fit=said, split=args.split,
            fail_penalty=args.fail_penalty, w_max=args.w_max, time_limit_s=args.time_limit, gap=args.gap,
            tolerance=args.tolerance, cvar_alpha=args.cvar_alpha,
        )
    except FitError as exc:
        return _fail(str(exc))
    result.save(args.out)
    m = result.meta
    print(f"fitted {args.objective} weights on {m['dev_tasks']} {args.split} tasks ({m['tasks_where_choice_matters']} where the "
          f"choice matters) in {m['solve_seconds']:.1f} s")
    for st in result.stages:
        print(f"  {st.describe()}")
    print(f"  objective {m['objective_value']:.6f}; dev regret max {m['max_regret_dev']:.4f}, mean {m['mean_regret_dev']:.4f}")
    print(f"  picks the oracle agent on {_pct(m.get('oracle_agreement_dev'))} of dev and {_pct(m.get('oracle_agreement_test'))} "
          f"of test tasks; pass@1 dev {_pct(m.get('pass_at_1_dev'))}, test {_pct(m.get('pass_at_1_test'))}")
    print(f"  weights: {json.dumps(result.weights.to_dict())}")
    failed = {k: v["error"] for k, v in m.get("ablations", {}).items() if "error" in v}
    for name, err in failed.items():
        print(f"  ablation {name} not fitted: {err}", file=sys.stderr)
    print(f"wrote {args.out} (fit split {args.split}, {m['fit']['tasks']} tasks, ids sha256 {m['fit']['task_ids_sha256'][:12]}; "
          f"{len(m.get('ablations', {})) - len(failed)} ablations)")
    return 0


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


def cmd_report(args: argparse.Namespace) -> int:
    """Replay every router on the log (and report live runs); write the tables, JSON results and figures."""
    # lazy: keeps `sale --help` fast (sale_graph.cli imports this module at top)
    from sale_graph.bench.fit.provenance import LeakageError
    from sale_graph.bench.report.build import run_report

    try:
        rep, paths, seconds = run_report(args.log, args.out, weights=args.weights, weights_mean=args.weights_mean,
                                         split=args.split, text_routers=not args.no_text_routers, figures=not args.no_figures,
                                         allow_fitted_on_eval=args.allow_fitted_on_eval)
    except LeakageError as exc:
        return _fail(str(exc))
    meta = rep["meta"]
    what = f"{meta['tasks']} {args.split} tasks" if "tasks" in meta else "live runs only"
    live = f"; live: {rep['live']['orders']} task orders" if rep.get("live") else ""
    print(f"{'SYNTHETIC ' if meta.get('synthetic') else ''}report on {what} in {seconds:.2f} s{live}"
          + (f"; bins: {', '.join(meta['bin_sources'])}" if "bin_sources" in meta else ""))
    for p in paths:
        print(f"  {p}")
    return 0


def cmd_live(args: argparse.Namespace) -> int:
    """Run SALE with memory for real on the test split, in seeded task orders (slow)."""
    # lazy: keeps `sale --help` fast (sale_graph.cli imports this module at top)
    from sale_graph.bench.runs.live import run_live

    args.split = args.split or "test"
    tasks = _load_tasks(args)
    search = {"backend": "local", "path": args.corpus} if args.corpus else None
    try:
        with _Servers(args.pool) as pool:
            s = run_live(tasks, pool, args.out, settings=_settings(args), weights=args.weights, memory_dir=args.memory_dir,
                         search=search, progress=not args.no_progress, orders=args.orders, seed=args.seed)
    except KeyboardInterrupt:
        print(f"\ninterrupted: finished tasks are in {args.out}; run again to resume", file=sys.stderr)
        os._exit(130)
    print(f"ran {s.ran} (order, task) runs live ({s.done_before} already done): {s.passed} passed, ${s.cost_usd:.6f}")
    return 0


def cmd_synthetic(args: argparse.Namespace) -> int:
    """Write a SYNTHETIC market log (and its embedding cache) with the chosen signal quality."""
    # lazy: keeps `sale --help` fast (sale_graph.cli imports this module at top)
    from sale_graph.bench.synthetic.generator import write_synthetic_log

    if not 0.0 <= args.signal <= 1.0:
        return _fail(f"--signal must be within [0, 1], got {args.signal}")
    path = write_synthetic_log(args.out, n_tasks=args.tasks, seed=args.seed, signal=args.signal, plain=not args.no_plain)
    print(f"wrote a SYNTHETIC market log of {args.tasks} tasks (signal {args.signal:g}, seed {args.seed}) to {path}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    """Fit and evaluate SALE on SYNTHETIC markets over a signal grid; table, JSON and one figure."""
    # lazy: keeps `sale --help` fast (sale_graph.cli imports this module at top)
    from sale_graph.bench.synthetic.sweep import run_sweep, sweep_table, write_sweep

    start = time.perf_counter()
    rows = run_sweep(args.signals, n_tasks=args.tasks, seeds=args.seeds, objectives=args.objectives,
                     time_limit_s=args.time_limit, gap=args.gap)
    seconds = time.perf_counter() - start
    paths = write_sweep(rows, args.out, args.objectives, seconds)
    print(sweep_table(rows, args.objectives[0]))
    print(f"SYNTHETIC sweep of {len(rows)} markets in {seconds:.1f} s")
    for p in paths:
        print(f"  {p}")
    return 0


HANDLERS = {"tasks": cmd_tasks, "record": cmd_record, "fit": cmd_fit, "report": cmd_report, "live": cmd_live,
            "synthetic": cmd_synthetic, "sweep": cmd_sweep}


def register_bench_commands(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``bench`` command group to the ``sale`` CLI's sub-parsers."""
    bench = subparsers.add_parser("bench", help="benchmark harness: tasks, record, fit, report, live, synthetic, sweep")
    sub = bench.add_subparsers(dest="bench_command", required=True)
    add_commands(sub, HANDLERS)
    return bench


def build_parser() -> argparse.ArgumentParser:
    """Standalone parser: ``python -m sale_graph.bench <command> ...``."""
    parser = argparse.ArgumentParser(prog="python -m sale_graph.bench", description="SALE benchmark harness.")
    sub = parser.add_subparsers(dest="bench_command", required=True)
    add_commands(sub, HANDLERS)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the standalone harness: a user error is one line and exit code 2, as in ``sale bench``."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SaleError as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

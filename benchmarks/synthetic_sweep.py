"""The SYNTHETIC signal sweep: SALE fitted at each signal level against the largest agent, kNN and the oracle.

Same as `sale bench sweep`, timed, writing to ``benchmarks/synthetic_sweep/`` by default (the committed
table and figure come from this script). Target: 753 tasks x 6 signal levels in a few minutes on 2 cores.

    python benchmarks/synthetic_sweep.py [--out DIR] [--objectives minmax,cvar,...] [--seeds 0,1] [--time-limit 15]
"""

from __future__ import annotations

import argparse
import time

from sale_graph.bench.fit.defaults import DEFAULT_OBJECTIVE
from sale_graph.bench.synthetic.sweep import SIGNALS, objective_table, run_sweep, sweep_table, write_sweep


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", default="benchmarks/synthetic_sweep")
    parser.add_argument("--tasks", type=int, default=753)
    parser.add_argument("--signals", default=",".join(f"{q:g}" for q in SIGNALS))
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--objectives", default=DEFAULT_OBJECTIVE, help="comma-separated; the first is plotted")
    parser.add_argument("--time-limit", type=float, default=15.0, help="seconds per MILP stage")
    args = parser.parse_args()
    objectives = args.objectives.split(",")
    start = time.perf_counter()
    rows = run_sweep([float(q) for q in args.signals.split(",")], n_tasks=args.tasks,
                     seeds=[int(s) for s in args.seeds.split(",")], objectives=objectives, time_limit_s=args.time_limit)
    seconds = time.perf_counter() - start
    paths = write_sweep(rows, args.out, objectives, seconds)
    print(sweep_table(rows, objectives[0]))
    print(objective_table(rows, objectives))
    print(f"SYNTHETIC sweep of {len(rows)} markets ({args.tasks} tasks each): {seconds:.1f} s wall")
    for p in paths:
        print(f"  {p}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

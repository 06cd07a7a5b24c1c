"""Time `sale bench report` on a SYNTHETIC 753-task, 4-agent market log (target: under 10 s).

The log has the exact record format of `sale bench record` (sale_graph.bench.synthetic.generator),
plain executions included, and, as a recorded log would after its first report, an
embedding cache next to it (embedding 753 task texts with the offline e5-small model takes
about 14 s on 2 cores and is paid once per log, so it is not part of the figure).

With ``--fit`` it also times `sale bench fit` (the two-stage fit of SALE plus its eight refitted
ablations, ``--time-limit`` seconds per MILP stage) on the log's dev split, which runs once per
log, and then the report again with those weights (every ablation replayed, leakage checked).

    python benchmarks/report_speed.py [--out benchmarks/results/speed] [--fit] [--time-limit 15]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from sale_graph.bench.synthetic.generator import write_synthetic_log

TARGET_S = 10.0


def _timed(cmd: list[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    return time.perf_counter() - start, proc


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/speed")
    parser.add_argument("--fit", action="store_true", help="also time `sale bench fit` and the report with its weights")
    parser.add_argument("--time-limit", type=float, default=15.0, help="seconds per MILP stage for --fit")
    args = parser.parse_args()
    out = Path(args.out)
    log = write_synthetic_log(out / "synthetic-753.jsonl", n_tasks=753, seed=0)
    bench = [sys.executable, "-m", "sale_graph.bench"]
    wall, proc = _timed([*bench, "report", "--log", str(log), "--out", str(out / "report")])
    if proc.returncode != 0:
        print(proc.stderr, file=sys.stderr)
        return proc.returncode
    print(proc.stdout.strip().splitlines()[0])
    print(f"`sale bench report` on 753 tasks x 4 agents (default weights): {wall:.2f} s wall (process start included); "
          f"target < {TARGET_S:.0f} s: {'OK' if wall < TARGET_S else 'TOO SLOW'}")
    worst = wall
    if args.fit:
        weights = out / "weights.json"
        fit_s, fit = _timed([*bench, "fit", "--log", str(log), "--out", str(weights), "--time-limit", str(args.time_limit)])
        print(fit.stdout.strip() or fit.stderr.strip())
        print(f"`sale bench fit` (SALE and 8 ablations, {args.time_limit:g} s per stage at most): {fit_s:.1f} s wall")
        if fit.returncode != 0:
            return fit.returncode
        wall, proc = _timed([*bench, "report", "--log", str(log), "--weights", str(weights), "--out", str(out / "report-fitted")])
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            return proc.returncode
        print(f"`sale bench report` with the fitted weights and their ablations: {wall:.2f} s wall; "
              f"target < {TARGET_S:.0f} s: {'OK' if wall < TARGET_S else 'TOO SLOW'}")
        worst = max(worst, wall)
    return 0 if worst < TARGET_S else 1


if __name__ == "__main__":
    raise SystemExit(main())

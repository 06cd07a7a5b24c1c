"""Time `sale bench report` on a synthetic 753-task, 4-agent market log (target: under 10 s).

The log has the exact record format of `sale bench record` (sale_graph.bench.synthetic)
and, as a recorded log would after its first report, an embedding cache next to it;
embedding 753 task texts with the offline e5-small model takes about 14 s on 2 cores
and is paid once per log (the cache is keyed by task id and text hash), so it is
timed separately. Also times the min-max weight fit on the log's dev split, which
`sale bench fit` runs once (not part of the report).

    python benchmarks/report_speed.py [--out benchmarks/results/speed] [--fit]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from sale_graph.bench.synthetic import write_synthetic_log

TARGET_S = 10.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/speed")
    parser.add_argument("--fit", action="store_true", help="also time `sale bench fit` (min-max MILP) on the log")
    args = parser.parse_args()
    out = Path(args.out)
    log = write_synthetic_log(out / "synthetic-753.jsonl", n_tasks=753, seed=0)
    cmd = [sys.executable, "-m", "sale_graph.bench", "report", "--log", str(log), "--out", str(out / "report")]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        print(proc.stderr, file=sys.stderr)
        return proc.returncode
    print(proc.stdout.strip().splitlines()[0])
    print(f"`sale bench report` on 753 tasks x 4 agents: {wall:.2f} s wall (process start included); "
          f"target < {TARGET_S:.0f} s: {'OK' if wall < TARGET_S else 'TOO SLOW'}")
    if args.fit:
        start = time.perf_counter()
        fit = subprocess.run([sys.executable, "-m", "sale_graph.bench", "fit", "--log", str(log), "--out",
                              str(out / "weights.json")], capture_output=True, text=True)
        print(fit.stdout.strip() or fit.stderr.strip())
        print(f"`sale bench fit` (min-max): {time.perf_counter() - start:.2f} s wall")
    return 0 if wall < TARGET_S else 1


if __name__ == "__main__":
    raise SystemExit(main())

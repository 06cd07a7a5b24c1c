"""Start-up overhead of the code sandbox per call, side by side in one run.

Runs trivial code N times on every available backend and, as the baseline, a
bare ``python -c pass`` subprocess; prints median and p95 wall time per call
and each backend's ratio to the baseline.

    python benchmarks/sandbox.py [--runs 30]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

from sale_graph.tools.sandbox import (
    BubblewrapSandbox,
    RlimitSandbox,
    probe_bubblewrap,
)


def _time_calls(call: Callable[[], None], runs: int) -> list[float]:
    call()  # warm-up: page cache, probes
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return samples


def _p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def _bare_python() -> None:
    subprocess.run([sys.executable, "-c", "pass"], check=True)


def _sandbox_call(sandbox: BubblewrapSandbox | RlimitSandbox) -> Callable[[], None]:
    def call() -> None:
        result = sandbox.run("pass")
        if result.exit_code != 0:
            raise RuntimeError(f"{sandbox.isolation}: trivial code failed:\n{result.to_text()}")

    return call


def main(argv: list[str] | None = None) -> None:
    """Measure and print the per-call overhead table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="timed calls per backend (default 30)")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    contenders: list[tuple[str, Callable[[], None]]] = [("bare `python -c pass`", _bare_python)]
    bwrap = shutil.which("bwrap")
    failure = probe_bubblewrap(bwrap) if bwrap else "bwrap not installed"
    if failure is None:
        contenders.append(("BubblewrapSandbox", _sandbox_call(BubblewrapSandbox())))
    else:
        print(f"skipping BubblewrapSandbox: {failure}")
    rlimit = RlimitSandbox()
    contenders.append((f"RlimitSandbox [{rlimit.isolation}]", _sandbox_call(rlimit)))

    print(f"python {sys.version.split()[0]} at {sys.executable}; {args.runs} runs each (after 1 warm-up)")
    results = [(name, _time_calls(call, args.runs)) for name, call in contenders]
    base_median = statistics.median(results[0][1])
    base_p95 = _p95(results[0][1])
    print(f"{'backend':<48} {'median ms':>10} {'p95 ms':>8} {'x median':>9} {'x p95':>7}")
    for name, samples in results:
        median, p95 = statistics.median(samples), _p95(samples)
        print(
            f"{name:<48} {median * 1000:>10.1f} {p95 * 1000:>8.1f} "
            f"{median / base_median:>9.2f} {p95 / base_p95:>7.2f}"
        )


if __name__ == "__main__":
    main()

"""``sale calibrate`` on the loopback wire server: the target share against the share reached on held-out tasks.

The pool is :mod:`tests.contract.calibration_market`'s: ``small`` ($0.10), ``medium``
($0.40) and ``large`` ($2.00) on the contract tests' wire server (real HTTP, real
``ChatOpenAI``), bidding plans whose quality and length differ from task to task, judged
by every agent with a point of noise. For each target share the cost weight is
calibrated on the calibration tasks (route-only auctions, recorded once in a market log
and reused for every further target), then the weights file it wrote runs live
route-only auctions on held-out tasks, and the dearest agent's share of wins there is
compared with the target. A budget target (expected dollars per task) is calibrated
and checked the same way.

    python -m benchmarks.calibrate [--tasks 120] [--held-out 120] [--targets 0.1 0.3 0.5] [--budget 0.006]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sale_graph import Calibration, SaleContext, build_sale_graph, calibrate_weights, load_pool
from sale_graph.calibrate import DEFAULT_EXECUTION_TOKENS
from tests.contract import calibration_market as market
from tests.contract.wire_server import WireServer


def held_out(pool_path: Path, weights: Path | None, texts: list[str], jobs: int = 4) -> list[dict[str, Any]]:
    """Live route-only auctions on ``texts`` with the weights file (``None``: the defaults): each final state."""
    graph = build_sale_graph().compile()
    context = SaleContext(pool=str(pool_path), weights=None if weights is None else str(weights), route_only=True,
                          use_memory=False, refine=False, check_endpoints=False)
    with ThreadPoolExecutor(max_workers=jobs) as ex:
        return list(ex.map(lambda t: graph.invoke({"task": t}, context=context), texts))


def share(states: list[dict[str, Any]], agent: str) -> float:
    """Share of the auctions ``agent`` won."""
    return sum(s["selection"]["winner"] == agent for s in states) / len(states)


def expected_cost(states: list[dict[str, Any]], prices: dict[str, float], execution_tokens: int) -> float:
    """Mean dollars per task: each auction's ledger plus its winner's execution at ``execution_tokens`` tokens."""
    total = sum(sum(e["cost_usd"] for e in s["ledger"]) + prices[s["selection"]["winner"]] * execution_tokens / 1e6
                for s in states)
    return total / len(states)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=120, help="calibration tasks (default 120)")
    parser.add_argument("--held-out", type=int, default=120, help="held-out tasks (default 120)")
    parser.add_argument("--targets", type=float, nargs="+", default=[0.1, 0.3, 0.5], help="target shares of the dearest agent")
    parser.add_argument("--budget", type=float, default=0.006, help="a budget target in dollars per task (0: none)")
    args = parser.parse_args()
    calibration, holdout = market.tasks(args.tasks), market.tasks(args.held_out, offset=args.tasks)
    with WireServer(market.behaviours()) as server, tempfile.TemporaryDirectory() as tmp:
        pool_path = market.write_pool(Path(tmp) / "pool.toml", server)
        prices = {a.name: a.price for a in load_pool(pool_path).agents}
        log = Path(tmp) / "calibration.auctions.jsonl"
        rows: list[tuple[str, dict[str, Any], Calibration, list[dict[str, Any]], int, float]] = []
        default = held_out(pool_path, None, holdout)
        targets: list[tuple[str, dict[str, Any]]] = [(f"share {t:g}", {"largest_share": t}) for t in args.targets]
        if args.budget > 0:
            targets.append((f"budget ${args.budget:g}", {"budget": args.budget}))
        for label, target in targets:
            calls_before = len(server.requests())
            start = time.perf_counter()
            cal = calibrate_weights(str(pool_path), calibration, log=log, **target)
            seconds = time.perf_counter() - start
            calls = len(server.requests()) - calls_before
            weights = cal.save(Path(tmp) / f"weights-{len(rows)}.json")
            live = held_out(pool_path, weights, holdout)
            rows.append((label, target, cal, live, calls, seconds))
    print(f"pool: {', '.join(f'{a} ${p:g}/1M' for a, p in prices.items())}; {args.tasks} calibration tasks, "
          f"{args.held_out} held-out tasks (wire server, route-only auctions)")
    print(f"pool-scaled default weights: large wins {share(default, 'large'):.1%} of the held-out tasks")
    print(f"{'target':<14} {'w_c':>10} {'calibration':>12} {'held-out':>9} {'diff':>7} {'calls':>6} {'wall s':>8}")
    for label, target, cal, live, calls, seconds in rows:
        if "largest_share" in target:
            want, got_cal, got = target["largest_share"], cal.solution.largest_share, share(live, "large")
            print(f"{label:<14} {cal.solution.w_c:>10.6f} {got_cal:>12.1%} {got:>9.1%} {got - want:>+7.1%} {calls:>6} {seconds:>8.2f}")
        else:
            want, got_cal = target["budget"], cal.solution.expected_cost_usd
            got = expected_cost(live, prices, DEFAULT_EXECUTION_TOKENS)
            print(f"{label:<14} {cal.solution.w_c:>10.6f} {'$' + format(got_cal, '.5f'):>12} {'$' + format(got, '.5f'):>9} "
                  f"{(got - want) / want:>+7.1%} {calls:>6} {seconds:>8.2f}")
    print("diff: held-out minus target (points for a share, relative for a budget); calls and wall s: the calibration's "
          "model calls and seconds (the first target records the auctions, the others solve on the log)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""``sale calibrate``: the line interface of :func:`sale_graph.calibrate.calibrate_weights`.

    sale calibrate --pool pool.toml --tasks tasks.txt --largest-share 0.3 --out weights.json
    sale calibrate --pool pool.toml --tasks tasks.jsonl --budget 0.002 --out weights.json

Bad input (a missing file, an empty task list, a share outside [0, 1], a pool of one
agent, a target no cost weight meets) is one ``error:`` line naming it, exit code 2
(the ``sale`` command's handling of :class:`~sale_graph.errors.SaleError`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from sale_graph.calibrate.solve import DEFAULT_EXECUTION_TOKENS
from sale_graph.cli.args import positive_int


def default_log(out: str) -> Path:
    """Where the auctions are kept when ``--log`` is not given: beside ``--out``, ``NAME.auctions.jsonl``."""
    p = Path(out).expanduser()
    return p.with_name(p.stem + ".auctions.jsonl")


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Run the route-only auctions, solve ``w_c``, write the weights file and print what it achieves."""
    from sale_graph.calibrate import TaskProgress, calibrate_weights  # heavy (the graph): only this command needs it

    def progress(p: TaskProgress) -> None:
        if p.status != "reused":
            detail = f": {p.detail}" if p.detail else ""
            print(f"[{p.done}/{p.total}] {p.task_id} {p.status}{detail}", file=sys.stderr, flush=True)

    log = Path(args.log).expanduser() if args.log else default_log(args.out)
    settings: dict[str, Any] = {"max_concurrency": args.max_concurrency}
    result = calibrate_weights(
        args.pool, args.tasks, largest_share=args.largest_share, budget=args.budget, execution_tokens=args.execution_tokens,
        weights=args.weights, log=log, jobs=args.jobs, settings=settings, check_endpoints=not args.no_check,
        domain=args.domain, on_task=progress,
    )
    out = result.save(args.out)
    for line in result.summary():
        print(line)
    for task_id, error in list(result.auctions.failures.items())[:5]:
        print(f"failed: {task_id}: {error}")
    print(f"auctions kept in {log}")
    print(f"wrote {out}: use it with `sale run --weights {out}` or SaleContext(weights={str(out)!r})")
    return 0


def register_calibrate_command(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``sale calibrate`` to the ``sale`` command's sub-parsers."""
    cal = subparsers.add_parser(
        "calibrate", help="choose the cost weight from route-only auctions on your own unlabelled tasks",
        description="Run route-only auctions (bids and jury, no execution) on your tasks and solve the cost weight w_c "
                    "exactly on them, so that the dearest agent wins at most a share of the tasks (or the expected cost "
                    "per task meets a budget). Writes a weights file for --weights.")
    cal.add_argument("--pool", required=True, help="pool TOML (at least two agents of different prices)")
    cal.add_argument("--tasks", required=True, help="task file: one task per line, or JSONL with a 'text' field per line")
    target = cal.add_mutually_exclusive_group(required=True)
    target.add_argument("--largest-share", type=float, metavar="X", help="the dearest agent wins at most this share of the tasks (0-1)")
    target.add_argument("--budget", type=float, metavar="USD", help="expected cost per task in dollars (auction + one execution)")
    cal.add_argument("--out", required=True, help="the weights file to write (JSON)")
    cal.add_argument("--weights", help="weights whose value terms (w_h, jury) to keep (default: the documented defaults)")
    cal.add_argument("--log", help="market log of the auctions, reused on a rerun (default: OUT's name + .auctions.jsonl)")
    cal.add_argument("--execution-tokens", type=int, default=DEFAULT_EXECUTION_TOKENS,
                     help=f"with --budget: tokens of one execution, at the winner's output price (default {DEFAULT_EXECUTION_TOKENS})")
    cal.add_argument("--domain", help="domain of tasks that name none (search, coding...: the tools the bid prompt names)")
    cal.add_argument("--jobs", type=positive_int, default=4, help="tasks auctioned at once (default 4)")
    cal.add_argument("--max-concurrency", type=positive_int, default=4, help="model calls in flight per auction (default 4)")
    cal.add_argument("--no-check", action="store_true", help="do not ping the endpoints first")
    cal.set_defaults(func=cmd_calibrate)
    return cal

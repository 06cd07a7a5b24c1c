"""`sale memory ...` sub-commands: inspect, back up, restore and wipe the auction memory.

The main ``sale`` CLI (argparse) calls :func:`register_memory_commands` with its
sub-parsers object. Every leaf command sets ``func`` to a callable taking the
parsed arguments and returning an exit code: 0 success, 2 a user error (the store
or file could not be used, one line on stderr; a refused request: ``clear``
without ``--yes``), as every ``sale`` command.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sale_graph.memory.errors import MemoryStoreError
from sale_graph.memory.store import AuctionMemory


def _store_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("memory store")
    where = group.add_mutually_exclusive_group()
    where.add_argument(
        "--memory-dir",
        type=Path,
        default=None,
        help="Chroma persistent directory (default: $SALE_HOME/memory); one writing process at a time",
    )
    where.add_argument(
        "--chroma-url",
        default=None,
        metavar="http://HOST:PORT",
        help="a Chroma server (`chroma run --path DIR --host HOST --port PORT`) shared by several workers",
    )
    group.add_argument(
        "--collection-prefix", default="sale", help="prefix of the memory's collections (default: sale)"
    )
    return common


def open_memory(args: argparse.Namespace) -> AuctionMemory:
    """Open the memory the command line points at (server URL, directory, or the default directory).

    Args:
        args: the parsed command line (``chroma_url``, ``memory_dir``, ``collection_prefix``).

    Returns:
        The memory.
    """
    prefix = getattr(args, "collection_prefix", "sale")
    if getattr(args, "chroma_url", None):
        return AuctionMemory.from_url(args.chroma_url, collection_prefix=prefix)
    return AuctionMemory(getattr(args, "memory_dir", None), collection_prefix=prefix)


def _guarded(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn expected user-facing failures into one line and exit code 2 (anything else propagates)."""

    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except (MemoryStoreError, OSError, ValueError) as exc:
            print(f"sale memory: error: {' '.join(str(exc).split())}", file=sys.stderr)
            return 2

    run.__name__ = command.__name__
    run.__doc__ = command.__doc__
    return run


def _print_stats(stats: dict[str, Any]) -> None:
    print(f"memory:     {stats['location']}")
    print(f"embedder:   {stats['embedder']}")
    print(f"auctions:   {stats['auctions']}")
    print(f"degraded:   {stats.get('degraded', 0)} (went on below the jury quorum)")
    print(f"strategies: {stats['strategies']}")
    outcomes = ", ".join(f"{k} {v}" for k, v in stats["outcomes"].items())
    print(f"outcomes:   {outcomes}")
    if stats["domains"]:
        print("domains:    " + ", ".join(f"{k or '(none)'} {v}" for k, v in stats["domains"].items()))
    if stats["agents"]:
        width = max(5, *(len(a) for a in stats["agents"]))
        print(f"\n{'agent':<{width}}  {'bids':>6}  {'wins':>6}  {'losses':>6}  {'refined':>7}")
        for agent, c in stats["agents"].items():
            print(f"{agent:<{width}}  {c['bids']:>6}  {c['wins']:>6}  {c['losses']:>6}  {c['refined']:>7}")


def cmd_stats(args: argparse.Namespace) -> int:
    """Print counts of auctions (and how many were degraded), bids, per-agent wins/losses and outcomes.

    Args:
        args: the parsed command line.

    Returns:
        The exit code.
    """
    stats = open_memory(args).stats()
    if args.json:
        print(json.dumps(stats, indent=2, sort_keys=True))
    else:
        _print_stats(stats)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Write the memory to a JSON-lines file.

    Args:
        args: the parsed command line (``file``).

    Returns:
        The exit code.
    """
    memory = open_memory(args)
    n = memory.export_jsonl(args.file)
    print(f"exported {memory.count_auctions()} auction(s), {n} bid(s) from {memory.location} to {args.file}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    """Load a JSON-lines export into the memory (idempotent).

    Args:
        args: the parsed command line (``file``).

    Returns:
        The exit code.
    """
    memory = open_memory(args)
    auctions, bids = memory.import_jsonl(args.file)
    print(f"imported {auctions} auction(s), {bids} bid(s) from {args.file} into {memory.location}")
    return 0


def cmd_clear(args: argparse.Namespace) -> int:
    """Delete every auction in the memory; refuses without --yes.

    Args:
        args: the parsed command line (``yes``).

    Returns:
        The exit code: 2 without ``--yes``.
    """
    if not args.yes:
        print(
            "sale memory: refusing to clear the memory without --yes (tip: `sale memory export FILE` first)",
            file=sys.stderr,
        )
        return 2
    memory = open_memory(args)
    auctions, bids = memory.clear()
    print(f"cleared {auctions} auction(s), {bids} bid(s) from {memory.location}")
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    """Apply a retention limit: the auctions past --max-age-days, then the oldest unlabelled ones over --max-auctions.

    Args:
        args: the parsed command line (``max_auctions``, ``max_age_days``, ``dry_run``).

    Returns:
        The exit code: 2 without a limit.
    """
    if args.max_auctions is None and args.max_age_days is None:
        print("sale memory: prune needs a limit: --max-auctions N and/or --max-age-days D", file=sys.stderr)
        return 2
    memory = open_memory(args)
    result = memory.prune(args.max_auctions, args.max_age_days, dry_run=args.dry_run)
    print(f"{result.note()} at {memory.location}")
    return 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_days(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of days, got {text}")
    return value


def register_memory_commands(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``memory stats | export FILE | import FILE | prune | clear --yes`` to a CLI's sub-parsers.

    Store options (``--memory-dir``, ``--chroma-url``, ``--collection-prefix``)
    go after the leaf command, e.g. ``sale memory stats --chroma-url
    http://127.0.0.1:8000``.

    Args:
        subparsers: the CLI's sub-parsers (what ``ArgumentParser.add_subparsers`` returned).

    Returns:
        The ``memory`` parser.
    """
    common = _store_options()
    memory = subparsers.add_parser("memory", help="inspect, export, import or clear the shared auction memory")
    actions = memory.add_subparsers(dest="memory_command", metavar="{stats,export,import,prune,clear}", required=True)

    stats = actions.add_parser("stats", parents=[common], help="counts of auctions, degraded auctions, bids, wins/losses, outcomes")
    stats.add_argument("--json", action="store_true", help="print the counts as JSON")
    stats.set_defaults(func=_guarded(cmd_stats))

    export = actions.add_parser("export", parents=[common], help="write the memory to a JSON-lines file")
    export.add_argument("file", type=Path, metavar="FILE")
    export.set_defaults(func=_guarded(cmd_export))

    imp = actions.add_parser("import", parents=[common], help="load a JSON-lines export (idempotent)")
    imp.add_argument("file", type=Path, metavar="FILE")
    imp.set_defaults(func=_guarded(cmd_import))

    prune = actions.add_parser("prune", parents=[common], help="apply a retention limit (oldest unlabelled auctions first)")
    prune.add_argument("--max-auctions", type=_positive_int, metavar="N",
                       help="keep at most N auctions: the oldest unlabelled (outcome unknown) go first, then the oldest graded")
    prune.add_argument("--max-age-days", type=_positive_days, metavar="D", help="remove every auction recorded more than D days ago")
    prune.add_argument("--dry-run", action="store_true", help="say what would go, remove nothing")
    prune.set_defaults(func=_guarded(cmd_prune))

    clear = actions.add_parser("clear", parents=[common], help="delete every auction (needs --yes)")
    clear.add_argument("--yes", action="store_true", help="really delete everything")
    clear.set_defaults(func=_guarded(cmd_clear))
    return memory

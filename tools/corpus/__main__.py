"""Build (or check) a local search corpus index and try queries on it.

Usage::

    python -m sale_graph.tools.corpus [SOURCE] [--name NAME] [--query Q ...] [--mode MODE] [-k K] [--force]

Without a source, the offline Wikipedia corpus (optional extra ``wiki``) is
indexed. The build report is printed as JSON, then each query's hits.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import asdict

from sale_graph.tools.corpus.index import SEARCH_MODES, LocalCorpus
from sale_graph.tools.corpus.wiki import WIKI_CORPUS_NAME, wiki_corpus_path

PROG = "python -m sale_graph.tools.corpus"


def _parser() -> argparse.ArgumentParser:
    """The command line's argument parser."""
    parser = argparse.ArgumentParser(prog=PROG, description="Build or reuse a local search corpus index.")
    parser.add_argument("source", nargs="?", help="folder of .txt/.md files or a .jsonl file (default: the offline Wikipedia corpus)")
    parser.add_argument("--name", help="index name (default: derived from the source; wiki-en for the Wikipedia corpus)")
    parser.add_argument("--query", action="append", default=[], help="a query to run after indexing (repeatable)")
    parser.add_argument("--mode", default="hybrid", choices=SEARCH_MODES)
    parser.add_argument("-k", type=int, default=5)
    parser.add_argument("--force", action="store_true", help="re-embed every chunk")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line: build or reuse the index, print the build report, run the queries.

    Args:
        argv: The arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit status (0).
    """
    args = _parser().parse_args(argv)
    if args.source:
        corpus = LocalCorpus(args.source, name=args.name)
    else:
        corpus = LocalCorpus(wiki_corpus_path(), name=args.name or WIKI_CORPUS_NAME)
    report = corpus.ensure_index(force=args.force)
    print(json.dumps(asdict(report), indent=2))
    for q in args.query:
        t0 = time.perf_counter()
        hits = corpus.search(q, k=args.k, mode=args.mode)
        ms = (time.perf_counter() - t0) * 1000
        print(f"\n{q!r} ({args.mode}, {ms:.0f} ms)")
        for h in hits:
            print(f"  {h.score:.4f}  {h.title}  <{h.url}>")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""A durable auction: the SALE subgraph under a persistent checkpointer, resumed after its process died.

    python examples/durable_app.py --checkpointer postgresql://USER@HOST/DB --thread t1 --pool POOL.toml "What is 2 + 3?"
    python examples/durable_app.py --checkpointer sqlite:///durable.sqlite --thread t1 --pool POOL.toml "What is 2 + 3?"

The app is ``examples/subgraph_app.py``'s (the auction, then a step of the app's own),
compiled with LangGraph's ``PostgresSaver`` (``langgraph-checkpoint-postgres``) or
``SqliteSaver`` (``langgraph-checkpoint-sqlite``), both in the ``scale`` extra. Run the same
command again after the process was killed (``kill -9``, a lost machine): a thread with an
unfinished run is resumed (``invoke(None, config)``) instead of starting a new auction, and
no bid or vote whose answer was saved is asked again. Every step is saved before the next
one starts (``durability="sync"``). See docs/langgraph.md, "Durable auctions".

``--json`` prints the final state's auction (its ledger, notes, bids and votes) as one JSON
object, for scripts and tests.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import operator
import os
from collections.abc import Iterator
from typing import Annotated, Any, NotRequired

from langchain_core.tools import tool
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from sale_graph import SaleContext, sale_subgraph, shared_key_problems


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


class App(TypedDict):
    """The app's state: ``task`` goes to the auction; the auction's record comes back by key name."""

    task: str
    auction_id: NotRequired[str]
    answer: NotRequired[str]
    selection: NotRequired[dict[str, Any]]
    ledger: NotRequired[list[dict[str, Any]]]
    notes: NotRequired[list[str]]
    bids: NotRequired[list[dict[str, Any]]]
    votes: NotRequired[list[dict[str, Any]]]
    history: NotRequired[Annotated[list[dict[str, Any]], operator.add]]


def record(state: App) -> dict[str, Any]:
    """The app's own step after the auction."""
    return {"history": [{"task": state["task"], "answer": state.get("answer", ""), "winner": state["selection"]["winner"]}]}


def build_app() -> StateGraph[App, SaleContext, App, App]:
    """START -> sale (the auction, executing with the app's ``add`` tool) -> record -> END, uncompiled."""
    assert shared_key_problems(App) == []
    g = StateGraph(App, context_schema=SaleContext)
    g.add_node("sale", sale_subgraph(tools=[add]))
    g.add_node("record", record)
    g.add_edge(START, "sale")
    g.add_edge("sale", "record")
    g.add_edge("record", END)
    return g


@contextlib.contextmanager
def open_checkpointer(url: str) -> Iterator[BaseCheckpointSaver[Any]]:
    """LangGraph's saver for ``url`` (``postgresql://...`` or ``sqlite:///PATH``), its tables created if missing."""
    if url.startswith(("postgresql://", "postgres://")):
        from langgraph.checkpoint.postgres import PostgresSaver

        with PostgresSaver.from_conn_string(url) as saver:
            saver.setup()
            yield saver
    elif url.startswith("sqlite:///"):
        from langgraph.checkpoint.sqlite import SqliteSaver

        with SqliteSaver.from_conn_string(url.removeprefix("sqlite:///")) as sqlite_saver:
            sqlite_saver.setup()
            yield sqlite_saver
    else:
        raise SystemExit(f"--checkpointer {url!r}: give postgresql://... or sqlite:///PATH")


def run(app: Any, thread_id: str, task: str, context: SaleContext) -> tuple[dict[str, Any], bool]:
    """Finish the thread's unfinished run if it has one, else run ``task``; returns the final state and whether it resumed."""
    config = {"configurable": {"thread_id": thread_id}}
    snapshot = app.get_state(config)
    # A run stopped mid-way has steps to run (`next`), or a step whose results were saved but whose
    # checkpoint was not (`tasks`, with `next` empty); a finished thread has neither.
    resumed = bool(snapshot.next or snapshot.tasks)
    inputs = None if resumed else {"task": task}
    return app.invoke(inputs, config, context=context, durability="sync"), resumed


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run (or resume) one auction on a thread; prints the winner and answer, or the auction as JSON with ``--json``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("task", nargs="?", default="What is 2 + 3? Use the add tool.")
    parser.add_argument("--checkpointer", required=True, help="postgresql://... or sqlite:///PATH")
    parser.add_argument("--thread", default="durable-app", help="the thread id (default: durable-app)")
    parser.add_argument("--pool", default=os.environ.get("SALE_POOL"), help="pool TOML (default: $SALE_POOL, else the embedded pool)")
    parser.add_argument("--memory-dir", help="the auction memory's folder (default: $SALE_HOME's)")
    parser.add_argument("--json", action="store_true", help="print the final auction as one JSON object")
    args = parser.parse_args(argv)
    context = SaleContext(pool=args.pool, memory_dir=args.memory_dir)
    with open_checkpointer(args.checkpointer) as saver:
        out, resumed = run(build_app().compile(checkpointer=saver), args.thread, args.task, context)
    summary = {"resumed": resumed, **{k: out.get(k) for k in ("auction_id", "answer", "selection", "ledger", "notes", "bids", "votes",
                                                                "history")}}
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"{'resumed' if resumed else 'ran'} auction {out['auction_id']}: winner {out['selection']['winner']}, "
              f"answer {out['answer']!r}, {len(out['ledger'])} paid calls")
    return summary


if __name__ == "__main__":
    main()

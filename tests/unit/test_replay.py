"""A run that stops in the middle of a paid step and is resumed on its thread (issue 22, durable auctions), on fakes.

The process "dies" as a task raising an error that is not a model-call failure (the node
does not record it): LangGraph has saved the writes of the tasks that finished, and a run
resumed with ``invoke(None, config)`` makes only the unfinished tasks again. The resumed
calls are flagged in the ledger and named in the notes; a resume with another context
fails before it pays. ``tests/integration/test_durable_auction.py`` kills a real process.
"""

from __future__ import annotations

import asyncio
import operator
import sqlite3
import time
from collections.abc import Iterator
from typing import Annotated, Any, NotRequired

import pytest
from langchain_core.messages import BaseMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send
from typing_extensions import TypedDict

from sale_graph import ResumeError, SaleContext, build_sale_graph, sale_as_node, sale_subgraph
from sale_graph.nodes.replay import RESUMING_KEY, mark_replayed, replay_note, resumed_task
from tests.fakes import FakeFactory, pool_of, prompt_text

POOL = pool_of(("small", 0.1), ("large", 1.0))
SMALL, LARGE = "1. answer from memory", "1. CAREFUL: check the sum 2. answer"
CTX = SaleContext(pool=POOL, check_endpoints=False, use_memory=False, route_only=True, max_concurrency=8)


class ProcessDied(Exception):
    """Stands for the process dying while a call is in flight: not a model-call failure, so no node records it."""


def saved_writes(saver: SqliteSaver | InMemorySaver) -> list[tuple[str, str]]:
    """(task id, channel) of every write the checkpointer holds."""
    if isinstance(saver, InMemorySaver):
        return [(w[0], w[1]) for writes in list(saver.writes.values()) for w in list(writes.values())]
    with saver.cursor(transaction=False) as cur:
        cur.execute("SELECT task_id, channel FROM writes")
        return [(str(t), str(c)) for t, c in cur.fetchall()]


def wait_for_saved_writes(saver: SqliteSaver | InMemorySaver, channel: str, tasks: int) -> None:
    """Wait until ``tasks`` tasks' writes to ``channel`` are in the checkpointer (10 s at most).

    ``prepare`` writes every list (emptied for the new auction): a task that also wrote
    ``auction_id`` is not counted.
    """
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        writes = saved_writes(saver)
        prepare = {t for t, c in writes if c == "auction_id"}
        if len({t for t, c in writes if c == channel and t not in prepare}) >= tasks:
            return
        time.sleep(0.01)
    raise AssertionError(f"{tasks} tasks' writes to {channel!r} were not saved in 10 s")


class Interrupted:
    """A fake pool whose jury call of ``judge`` on ``bidder_plan`` dies the first time, once the other votes are saved.

    It waits until the checkpointer holds the three other votes' writes: a vote answered but
    not yet saved when the process dies is in flight, and is asked again too.
    """

    def __init__(self, judge: str, bidder_plan: str, saver: SqliteSaver | InMemorySaver) -> None:
        self.judge, self.bidder_plan, self.saver = judge, bidder_plan, saver
        self.died = False
        self.factory = FakeFactory({"bid": self.bid, "jury": self.vote, "execute": self.execute})
        self.executions = 0
        self.die_in_execution = False
        self.other_votes = 3  # how many other jury tasks are saved before the call dies (batched: one per other judge)


    def bid(self, agent: str, messages: list[BaseMessage]) -> str:
        return LARGE if agent == "large" else SMALL

    def vote(self, agent: str, messages: list[BaseMessage]) -> str:
        text = prompt_text(messages)
        if agent == self.judge and self.bidder_plan in text and not self.died:
            wait_for_saved_writes(self.saver, "votes", self.other_votes)
            self.died = True
            raise ProcessDied("killed")
        if "A:" in text and "B:" in text:  # a batched jury call scores both bids, each under its letter
            a_is_large = text.index("CAREFUL") < text.index("B:")
            return f"A: {5 if a_is_large else 1}\nB: {1 if a_is_large else 5}"
        return "SCORE: 5" if "CAREFUL" in text else "SCORE: 1"

    def execute(self, agent: str, messages: list[BaseMessage]) -> str:
        self.executions += 1
        if self.die_in_execution and self.executions == 1:
            raise ProcessDied("killed")
        return "Final Answer: 5"

    def calls(self, phase: str) -> list[str]:
        return [a for a, p in self.factory.calls if p == phase]


@pytest.fixture
def saver() -> Iterator[SqliteSaver]:
    """A persistent checkpointer (SQLite in memory: the same saver class as on disk, no file)."""
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    yield SqliteSaver(conn)
    conn.close()


def test_a_run_resumed_after_dying_in_the_jury_asks_only_the_unfinished_vote_again(saver: SqliteSaver) -> None:
    fake = Interrupted("large", SMALL, saver)
    graph = build_sale_graph(model_factory=fake.factory, tools=[]).compile(checkpointer=saver)
    cfg: Any = {"configurable": {"thread_id": "t"}}
    with pytest.raises(ProcessDied):
        graph.invoke({"task": "What is 2 + 3?"}, cfg, context=CTX)
    assert graph.get_state(cfg).next == ("jury",)

    out = graph.invoke(None, cfg, context=CTX)

    assert sorted(fake.calls("bid")) == ["large", "small"]  # each bid once: finished before the jury step
    assert sorted(fake.calls("jury")) == ["large", "large", "large", "small", "small"]  # 4 votes, the dead one asked twice
    assert out["selection"]["winner"] == "large"
    assert [(e["phase"], e["agent"]) for e in out["ledger"] if e.get("replayed")] == [("jury", "large")]
    assert len(out["ledger"]) == 6 and len(out["votes"]) == 4  # one line per answered call: the dead call never answered
    assert replay_note("the jury call of large on small (original)") in out["notes"]


def test_a_subgraph_resumed_by_its_parent_asks_only_the_unfinished_vote_again(saver: SqliteSaver) -> None:
    class App(TypedDict):
        task: str
        answer: NotRequired[str]
        selection: NotRequired[dict[str, Any]]
        ledger: NotRequired[list[dict[str, Any]]]
        notes: NotRequired[list[str]]
        history: NotRequired[Annotated[list[str], operator.add]]

    fake = Interrupted("small", LARGE, saver)
    g = StateGraph(App, context_schema=SaleContext)
    g.add_node("sale", sale_subgraph(model_factory=fake.factory, tools=[]))
    g.add_node("record", lambda s: {"history": [s["selection"]["winner"]]})
    g.add_edge(START, "sale")
    g.add_edge("sale", "record")
    g.add_edge("record", END)
    app = g.compile(checkpointer=saver)
    cfg: Any = {"configurable": {"thread_id": "parent"}}
    with pytest.raises(ProcessDied):
        app.invoke({"task": "What is 2 + 3?"}, cfg, context=CTX)

    out = app.invoke(None, cfg, context=CTX)

    assert sorted(fake.calls("bid")) == ["large", "small"]
    assert sorted(fake.calls("jury")) == ["large", "large", "small", "small", "small"]
    assert out["history"] == ["large"]
    assert [(e["phase"], e["agent"]) for e in out["ledger"] if e.get("replayed")] == [("jury", "small")]
    assert replay_note("the jury call of small on large (original)") in out["notes"]


def test_a_wrapped_auction_node_resumed_by_its_parent_asks_only_the_unfinished_vote_again(saver: SqliteSaver) -> None:
    class Ask(TypedDict):
        question: str
        results: NotRequired[Annotated[list[dict[str, Any]], operator.add]]

    fake = Interrupted("small", SMALL, saver)
    node = sale_as_node(input_map=lambda s: {"task": s["question"]},
                        output_map=lambda out: {"results": [{"winner": out["selection"]["winner"], "ledger": out["ledger"],
                                                             "notes": out["notes"]}]},
                        model_factory=fake.factory, tools=[])
    g = StateGraph(Ask, context_schema=SaleContext)
    g.add_node("ask", node)
    g.add_edge(START, "ask")
    g.add_edge("ask", END)
    app = g.compile(checkpointer=saver)
    cfg: Any = {"configurable": {"thread_id": "wrapped"}}
    with pytest.raises(ProcessDied):
        app.invoke({"question": "What is 2 + 3?"}, cfg, context=CTX)

    [result] = app.invoke(None, cfg, context=CTX)["results"]

    assert sorted(fake.calls("bid")) == ["large", "small"]
    assert sorted(fake.calls("jury")) == ["large", "large", "small", "small", "small"]
    assert result["winner"] == "large"
    assert [(e["phase"], e["agent"]) for e in result["ledger"] if e.get("replayed")] == [("jury", "small")]


def test_an_async_run_resumed_after_dying_in_the_jury_asks_only_the_unfinished_vote_again() -> None:
    saver = InMemorySaver()
    fake = Interrupted("large", LARGE, saver)
    graph = build_sale_graph(model_factory=fake.factory, tools=[]).compile(checkpointer=saver)
    cfg: Any = {"configurable": {"thread_id": "async"}}
    with pytest.raises(ProcessDied):
        asyncio.run(graph.ainvoke({"task": "What is 2 + 3?"}, cfg, context=CTX))

    out = asyncio.run(graph.ainvoke(None, cfg, context=CTX))

    assert sorted(fake.calls("jury")) == ["large", "large", "large", "small", "small"]
    assert [(e["phase"], e["agent"]) for e in out["ledger"] if e.get("replayed")] == [("jury", "large")]
    assert replay_note("the jury call of large on large (original)") in out["notes"]


def test_a_batched_jury_resumed_after_dying_asks_only_the_unfinished_judge_again(saver: SqliteSaver) -> None:
    fake = Interrupted("small", SMALL, saver)
    fake.other_votes = 1
    graph = build_sale_graph(model_factory=fake.factory, tools=[]).compile(checkpointer=saver)
    cfg: Any = {"configurable": {"thread_id": "batched"}}
    ctx = SaleContext(pool=POOL, check_endpoints=False, use_memory=False, route_only=True, jury_mode="batched")
    with pytest.raises(ProcessDied):
        graph.invoke({"task": "What is 2 + 3?"}, cfg, context=ctx)

    out = graph.invoke(None, cfg, context=ctx)

    assert sorted(fake.calls("jury")) == ["large", "small", "small"]
    assert out["selection"]["winner"] == "large" and len(out["votes"]) == 4
    assert [(e["phase"], e["agent"]) for e in out["ledger"] if e.get("replayed")] == [("jury", "small")]
    assert any(n.startswith("the jury call of small on ") and "made again" in n for n in out["notes"])


def test_a_run_resumed_after_dying_in_the_execution_runs_it_again_and_flags_its_calls(saver: SqliteSaver) -> None:
    fake = Interrupted("nobody", SMALL, saver)
    fake.die_in_execution = True
    graph = build_sale_graph(model_factory=fake.factory, tools=[]).compile(checkpointer=saver)
    cfg: Any = {"configurable": {"thread_id": "execute"}}
    ctx = SaleContext(pool=POOL, check_endpoints=False, use_memory=False)
    with pytest.raises(ProcessDied):
        graph.invoke({"task": "What is 2 + 3?"}, cfg, context=ctx)

    out = graph.invoke(None, cfg, context=ctx)

    assert len(fake.calls("bid")) == 2 and len(fake.calls("jury")) == 4  # the auction before it: nothing asked again
    assert fake.executions == 2 and out["answer"] == "5"  # the execution's call was made twice
    assert [(e["phase"], e["agent"]) for e in out["ledger"] if e.get("replayed")] == [("execute", "large")]
    assert replay_note("the execution by large (1 model call)") in out["notes"]


class LosesTheJuryCheckpoint(SqliteSaver):
    """A saver that fails, once, to store the checkpoint the jury step runs against (step 3), as a process killed then would."""

    lost = False

    def put(self, config: Any, checkpoint: Any, metadata: Any, new_versions: Any) -> Any:
        if metadata.get("step") == 3 and not self.lost:
            self.lost = True
            raise ProcessDied("killed while saving the checkpoint")
        return super().put(config, checkpoint, metadata, new_versions)


@pytest.mark.parametrize(("durability", "votes_asked"), [("sync", 4), ("async", 8)])
def test_with_async_durability_votes_saved_against_a_lost_checkpoint_are_asked_again_unflagged(
    durability: Any, votes_asked: int
) -> None:
    """The limit docs/langgraph.md states: only durability="sync" saves a step's checkpoint before its tasks pay."""
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    saver = LosesTheJuryCheckpoint(conn)
    fake = Interrupted("nobody", SMALL, saver)
    graph = build_sale_graph(model_factory=fake.factory, tools=[]).compile(checkpointer=saver)
    cfg: Any = {"configurable": {"thread_id": "t"}}
    with pytest.raises(ProcessDied):
        graph.invoke({"task": "What is 2 + 3?"}, cfg, context=CTX, durability=durability)
    snapshot = graph.get_state(cfg)
    assert not snapshot.next and [t.name for t in snapshot.tasks] == ["score"]  # unfinished, though `next` is empty

    out = graph.invoke(None, cfg, context=CTX, durability=durability)

    assert len(fake.calls("jury")) == votes_asked  # async: the votes ran before their checkpoint was lost, and ran again
    assert not [e for e in out["ledger"] if e.get("replayed")]  # the resumed run makes the jury step afresh
    conn.close()


def test_a_resume_with_another_pool_fails_before_paying(saver: SqliteSaver) -> None:
    fake = Interrupted("large", SMALL, saver)
    graph = build_sale_graph(model_factory=fake.factory, tools=[]).compile(checkpointer=saver)
    cfg: Any = {"configurable": {"thread_id": "t"}}
    with pytest.raises(ProcessDied):
        graph.invoke({"task": "What is 2 + 3?"}, cfg, context=CTX)
    paid = len(fake.factory.calls)
    other = pool_of(("small", 0.1), ("large", 1.0)).__class__(POOL.agents, source="another pool file")

    with pytest.raises(ResumeError, match="another pool file"):
        graph.invoke(None, cfg, context=SaleContext(pool=other, check_endpoints=False, use_memory=False, route_only=True))
    with pytest.raises(ResumeError, match="embedded pool"):
        graph.invoke(None, cfg)  # no context: the default pool
    assert len(fake.factory.calls) == paid  # nothing asked on another pool
    assert graph.invoke(None, cfg, context=CTX)["selection"]["winner"] == "large"  # the right context still resumes it


def test_a_run_with_no_interruption_flags_nothing(saver: SqliteSaver) -> None:
    fake = Interrupted("nobody", SMALL, saver)
    graph = build_sale_graph(model_factory=fake.factory, tools=[]).compile(checkpointer=saver)
    out = graph.invoke({"task": "What is 2 + 3?"}, {"configurable": {"thread_id": "t"}}, context=CTX)
    assert not [e for e in out["ledger"] if e.get("replayed")]
    assert not [n for n in out["notes"] if "made again" in n]


def test_langgraph_marks_only_the_resumed_step_as_resuming(saver: SqliteSaver) -> None:
    """The internal config key replay.py reads: set in the interrupted step's re-run tasks, in no other step."""

    class S(TypedDict, total=False):
        seen: Annotated[list[tuple[str, bool]], operator.add]

    died: list[int] = []

    def work(payload: dict[str, int]) -> dict[str, Any]:
        if payload["i"] == 1 and not died:
            wait_for_saved_writes(saver, "seen", 2)  # first's and work0's
            died.append(1)
            raise ProcessDied("killed")
        return {"seen": [(f"work{payload['i']}", resumed_task())]}

    g = StateGraph(S)
    g.add_node("first", lambda s: {"seen": [("first", resumed_task())]})
    g.add_node("work", work)
    g.add_node("after", lambda s: {"seen": [("after", resumed_task())]})
    g.add_edge(START, "first")
    g.add_conditional_edges("first", lambda s: [Send("work", {"i": i}) for i in range(2)], ["work"])
    g.add_edge("work", "after")
    g.add_edge("after", END)
    app = g.compile(checkpointer=saver)
    cfg: Any = {"configurable": {"thread_id": "pin"}}
    with pytest.raises(ProcessDied):
        app.invoke({"seen": []}, cfg)
    out = app.invoke(None, cfg)
    assert sorted(tuple(x) for x in out["seen"]) == [("after", False), ("first", False), ("work0", False), ("work1", True)]
    assert RESUMING_KEY == "__pregel_resuming"


def test_resumed_task_is_false_outside_a_graph_and_mark_replayed_flags_every_line() -> None:
    assert resumed_task() is False
    update = mark_replayed({"ledger": [{"phase": "bid", "agent": "a"}], "notes": ["n"]}, "the original bid of a")
    assert update["ledger"] == [{"phase": "bid", "agent": "a", "replayed": True}]
    assert update["notes"] == ["n", replay_note("the original bid of a")]

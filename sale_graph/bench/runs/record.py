"""`sale bench record`: run the whole pool on every task and log the full market.

For every task the recorder collects, with the graph's own node functions
(so prompts, parsing, entropy and accounting are exactly those of a live auction):

* every agent's bid (``nodes.bid``: strategy, tokens, entropy and its source, cost);
* the full jury matrix (``nodes.jury``: every agent scores every successful bid,
  its own included; missing votes keep their reason);
* every agent's *own* execution of the task following its own bid
  (``nodes.execute``: the ReAct executor with the domain's tools and budgets),
  graded: search answers with :func:`sale_graph.executor.grading.grade_answer` against the
  gold aliases, code with :func:`sale_graph.tools.code.check_solution` in the sandbox;
* unless ``plain=False`` (``--no-plain``), every agent's *plain* execution
  (``plain_executions``): the same executor, tools and budgets with no plan, the
  strategy slot holding :data:`PLAIN_STRATEGY`. Routers that do not bid (single
  agents, kNN, MLP, the oracle) are evaluated on these, as the paper's single agents
  run plain ReAct; without them the report charges those routers for the plan they
  follow, and says so.

An agent whose bid failed still executes (with an empty strategy, marked
``strategy_used: false``) so single-agent baselines have an outcome on every task.

With that matrix any router (SALE with any weights, its ablations, kNN, cascades,
the oracle) can be replayed offline on the same tasks (:mod:`sale_graph.bench.routers`).

The log is append-only JSONL, one fsync'd record per task
(:mod:`sale_graph.bench.market.log`); a rerun skips task ids already logged, after
truncating a partial last line, so a crash or Ctrl-C loses at most the tasks in flight.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from langgraph.runtime import Runtime

from sale_graph.bench.market.log import LogWriter, read_log, repair_log
from sale_graph.bench.runs.classifier_call import agent_criteria, run_classifier
from sale_graph.bench.tasks.schema import Task
from sale_graph.context import SaleContext
from sale_graph.executor.grading import DEFAULT_F1_THRESHOLD, extract_final_answer, grade_answer
from sale_graph.nodes.bid import BidTask, make_bid_node
from sale_graph.nodes.execute import make_execute_node
from sale_graph.nodes.jury import JuryTask, make_jury_node
from sale_graph.pool import AgentPool, AgentSpec
from sale_graph.services import SaleServices
from sale_graph.tools.code import check_solution, extract_code

RECORD_SCHEMA = 1
_LIVE = SaleContext()  # the live auction's defaults, which a recording shares
PLAIN_STRATEGY = "No plan was given: solve the task directly, using the tools as needed."
"""What a plain execution's strategy slot holds (the execute node's prompt always has one)."""


@dataclass
class RecordSettings:
    """Token caps and budgets of a recording (defaults: the live auction's defaults).

    ``max_concurrency`` bounds model calls in flight (bids, jury, executions);
    ``jobs`` is how many tasks are worked on at once; ``plain`` adds every agent's
    plain execution (no plan) beside the plan-following one. A cap left ``None``
    is each agent's own from the pool (else the live defaults). ``classifier``
    adds one text-classifier call per task (:mod:`sale_graph.bench.runs.classifier_call`)
    by ``classifier_agent`` (default: the cheapest agent), the agents' criteria
    holding the ``classifier_criteria`` descriptions.
    """

    bid_max_tokens: int | None = _LIVE.bid_max_tokens
    jury_max_tokens: int | None = _LIVE.jury_max_tokens
    execute_step_max_tokens: int | None = _LIVE.execute_step_max_tokens
    execute_max_steps: int = _LIVE.execute_max_steps
    execute_max_tokens: int = _LIVE.execute_max_tokens
    execute_wall_time_s: float = _LIVE.execute_wall_time_s
    max_concurrency: int = _LIVE.max_concurrency
    jobs: int = 1
    f1_threshold: float | None = None
    plain: bool = True
    classifier: bool = True
    classifier_agent: str | None = None
    classifier_criteria: dict[str, str] = field(default_factory=dict)
    classifier_max_tokens: int | None = 64

    def context(self, pool: AgentPool, search: dict[str, Any] | None = None) -> SaleContext:
        """The :class:`SaleContext` the node functions run under (no memory, no endpoint checks)."""
        return SaleContext(
            pool=pool, use_memory=False, refine=False, check_endpoints=False, max_concurrency=self.max_concurrency,
            bid_max_tokens=self.bid_max_tokens, jury_max_tokens=self.jury_max_tokens,
            execute_step_max_tokens=self.execute_step_max_tokens, execute_max_steps=self.execute_max_steps,
            execute_max_tokens=self.execute_max_tokens, execute_wall_time_s=self.execute_wall_time_s, search=search,
        )


def _sum_ledger(ledger: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {
        "input_tokens": int(sum(e["input_tokens"] for e in ledger)),
        "output_tokens": int(sum(e["output_tokens"] for e in ledger)),
        "cost_usd": float(sum(e["cost_usd"] for e in ledger)),
    }


def grade_execution(task: Task, answer: str, f1_threshold: float | None = None) -> dict[str, Any]:
    """Grade one execution's answer: ``{"passed": bool, "detail": str, ...}``.

    Search: the short answer is :func:`sale_graph.executor.grading.extract_final_answer`
    of the executor's answer, graded against the gold aliases (exact match or
    F1 at the threshold). Coding: the last ```python block (else the whole
    answer) is run against the task's tests in the sandbox; when it does not
    define the entry point, the task's ``code_prefix`` (the signature) is put
    before it so a body-only completion runs; when it does, only the prefix's
    import lines are put before it.
    """
    if task.domain == "search":
        threshold = DEFAULT_F1_THRESHOLD if f1_threshold is None else f1_threshold
        short = extract_final_answer(answer) if answer.strip() else ""
        g = grade_answer(short, task.gold or [], threshold)
        return {"passed": g.passed, "detail": f"em={g.em} f1={g.f1:.3f} vs {g.best_gold!r}", "extracted": short,
                "em": g.em, "f1": round(g.f1, 4), "f1_threshold": threshold}
    code = extract_code(answer) if answer.strip() else ""
    if not code.strip():
        return {"passed": False, "detail": "no code in the answer", "extracted": ""}
    prefix = task.code_prefix or ""
    if prefix and f"def {task.entry_point}" not in code:
        program = prefix + code
    else:
        imports = [ln for ln in prefix.splitlines() if ln.startswith(("import ", "from "))]
        program = "\n".join(imports + [code])
    check = check_solution(program, task.tests or "", task.entry_point)
    return {"passed": check.passed, "detail": check.message or "tests passed", "extracted": code[:4000]}


@dataclass
class CachedToolServices(SaleServices):
    """:class:`SaleServices` that builds each domain's tools once, under a lock, and reuses them.

    Every agent executes every task, often in parallel; building the search
    tools once per domain (not once per execution) avoids rebuilding an index
    per call and concurrent first-time builds of the same files.
    """

    _tool_cache: dict[str | None, list[Any]] = field(default_factory=dict, repr=False)
    _tool_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def tools_for(self, domain: str | None, ctx: SaleContext) -> list[Any]:
        """The domain's tools, built on first use and shared afterwards."""
        with self._tool_lock:
            if domain not in self._tool_cache:
                self._tool_cache[domain] = super().tools_for(domain, ctx)
            return list(self._tool_cache[domain])


class Recorder:
    """Runs the pool on tasks through the graph's node functions and builds market records."""

    def __init__(self, pool: AgentPool, settings: RecordSettings | None = None, *,
                 services: SaleServices | None = None, search: dict[str, Any] | None = None) -> None:
        self.pool = pool
        self.settings = settings or RecordSettings()
        self.services = services or CachedToolServices()
        self.ctx = self.settings.context(pool, search)
        self._bid = make_bid_node(self.services)
        self._jury = make_jury_node(self.services)
        self._execute = make_execute_node(self.services)
        self._exec_limiter = threading.BoundedSemaphore(self.settings.max_concurrency)
        self._runtime = cast(Runtime[SaleContext], SimpleNamespace(context=self.ctx, stream_writer=None))
        self._classifier: tuple[AgentSpec, dict[str, str]] | None = None
        if self.settings.classifier:
            agents = list(pool.agents)
            name = self.settings.classifier_agent
            if name is None:
                chooser = min(agents, key=lambda a: (a.price_output, a.name))
            elif name in pool.names:
                chooser = pool.get(name)
            else:
                raise ValueError(f"classifier agent {name!r} is not in the pool {pool.names}")
            self._classifier = (chooser, agent_criteria(agents, self.settings.classifier_criteria))

    def _fan_out(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        if len(items) <= 1:
            return [fn(i) for i in items]
        with ThreadPoolExecutor(max_workers=len(items), thread_name_prefix="bench-call") as ex:
            return list(ex.map(fn, items))

    def _run_bid(self, agent: AgentSpec, task: Task) -> dict[str, Any]:
        tool_names = self.services.tool_names_for(task.domain)
        payload = BidTask(auction_id=f"bench-{task.id}", agent=agent.name, task=task.text, tool_names=tool_names)
        out = self._bid(payload, runtime=self._runtime)
        bid = dict(out["bids"][0])
        bid.update(_sum_ledger(out["ledger"]))
        return bid

    def _run_vote(self, args: tuple[AgentSpec, dict[str, Any], Task]) -> dict[str, Any]:
        judge, bid, task = args
        out = self._jury(JuryTask(auction_id=f"bench-{task.id}", judge=judge.name, bidder=bid["agent"], round="original",
                                  task=task.text, strategy=bid["strategy"]), runtime=self._runtime)
        vote = dict(out["votes"][0])
        vote.update(_sum_ledger(out["ledger"]))
        vote["seconds"] = round(sum(e["seconds"] for e in out["ledger"]), 4)
        return vote

    def _run_execution(self, args: tuple[AgentSpec, dict[str, Any] | None, Task]) -> dict[str, Any]:
        """One graded execution: following ``bid`` (its strategy), or plain when ``bid`` is ``None``."""
        agent, bid, task = args
        if bid is None:
            strategy = PLAIN_STRATEGY
        else:
            strategy = bid["strategy"] if bid["status"] == "ok" else ""
        state = {
            "task": task.text, "domain": task.domain,
            "selection": {"winner": agent.name, "round": "original", "strategy": strategy, "net": 0.0, "margin": 0.0,
                          "runner_up": None, "provisional_winner": agent.name, "reason": "benchmark: every agent executes"},
        }
        with self._exec_limiter:
            out = self._execute(state, runtime=self._runtime)
        ex = dict(out["execution"])
        ex.update(_sum_ledger(out["ledger"]))
        ex["mode"] = "plain" if bid is None else "plan"
        ex["strategy_used"] = bid is not None and bool(strategy)
        grade = grade_execution(task, ex.get("answer", ""), self.settings.f1_threshold)
        ex["passed"] = grade.pop("passed")
        ex["grade"] = grade
        return ex

    def record_task(self, task: Task) -> dict[str, Any]:
        """Bids, full jury matrix and every agent's graded execution for one task (one log record)."""
        start = time.perf_counter()
        agents = list(self.pool.agents)
        bids = self._fan_out(lambda a: self._run_bid(a, task), agents)
        ok_bids = [b for b in bids if b["status"] == "ok"]
        votes = self._fan_out(self._run_vote, [(j, b, task) for b in ok_bids for j in agents])
        jobs: list[tuple[AgentSpec, dict[str, Any] | None, Task]] = [(a, b, task) for a, b in zip(agents, bids, strict=True)]
        if self.settings.plain:
            jobs += [(a, None, task) for a in agents]
        runs = self._fan_out(self._run_execution, jobs)
        record: dict[str, Any] = {
            "schema": RECORD_SCHEMA,
            "kind": "market",
            "task": task.to_dict(),
            "agents": [{"name": a.name, "model": a.model, "price_input": a.price_input, "price_output": a.price_output}
                       for a in agents],
            "bids": bids,
            "jury": votes,
            "executions": runs[:len(agents)],
            "settings": asdict(self.settings),
            "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "wall_seconds": round(time.perf_counter() - start, 3),
        }
        if self.settings.plain:
            record["plain_executions"] = runs[len(agents):]
        if self._classifier is not None:
            chooser, criteria = self._classifier
            record["classifier"] = run_classifier(self.services, self.ctx, chooser, task.text, criteria,
                                                  self.settings.classifier_max_tokens)
        return record


def record_cost(record: dict[str, Any]) -> float:
    """Dollars one record spent (bids, jury, every execution and the classifier call)."""
    keys = ("bids", "jury", "executions", "plain_executions")
    classifier = record.get("classifier") or {}
    return float(sum(x.get("cost_usd", 0.0) for key in keys for x in record.get(key, []))
                 + classifier.get("cost_usd", 0.0))


@dataclass
class RecordSummary:
    """What one `record` run did."""

    done_before: int
    recorded: int
    repaired_bytes: int
    cost_usd: float


def _logged(out: str, pool: AgentPool, settings: RecordSettings) -> tuple[set[str], float]:
    """Task ids already in the log and the dollars they spent; an error when the log is of another pool or mode."""
    done: set[str] = set()
    spent = 0.0
    if not Path(out).exists():
        return done, spent
    for rec in read_log(out, allow_partial_tail=False).records:
        done.add(str(rec["task"]["id"]))
        spent += record_cost(rec)
        names = [a["name"] for a in rec.get("agents", [])]
        if names and names != pool.names:
            raise ValueError(
                f"{out}: task {rec['task']['id']!r} was recorded with agents {names}, but the pool has {pool.names}; "
                "write to a new log for a different pool"
            )
        if ("plain_executions" in rec) != settings.plain:
            raise ValueError(
                f"{out}: task {rec['task']['id']!r} was recorded {'with' if 'plain_executions' in rec else 'without'} "
                f"plain executions, this run {'with' if settings.plain else 'without (--no-plain)'}; a log holds one "
                "kind: write to a new log"
            )
    return done, spent


def record_tasks(
    tasks: Sequence[Task],
    pool: AgentPool,
    out: str,
    settings: RecordSettings | None = None,
    *,
    services: SaleServices | None = None,
    search: dict[str, Any] | None = None,
    progress: bool = True,
    recorder: Recorder | None = None,
) -> RecordSummary:
    """Record ``tasks`` into the log ``out``, skipping those already in it; resumable.

    A partial last line left by a crash is truncated first. Up to
    ``settings.jobs`` tasks are in flight at once; each finished task is
    appended and fsync'd immediately. On Ctrl-C, pending tasks are cancelled
    and the ``KeyboardInterrupt`` propagates (tasks in flight are not logged).
    """
    settings = settings or RecordSettings()
    repaired = repair_log(out)
    done, spent = _logged(out, pool, settings)
    todo = [t for t in tasks if t.id not in done]
    recorder = recorder or Recorder(pool, settings, services=services, search=search)
    bar = None
    if progress:
        from tqdm import tqdm  # optional extra: bench (tqdm)

        bar = tqdm(total=len(tasks), initial=len(tasks) - len(todo), unit="task", dynamic_ncols=True,
                   desc="recording", smoothing=0.1)
        bar.set_postfix_str(f"${spent:.6f}")
    recorded = 0
    writer = LogWriter(out)
    executor = ThreadPoolExecutor(max_workers=max(1, settings.jobs), thread_name_prefix="bench-task")
    try:
        queue = iter(todo)
        in_flight: set[Future[dict[str, Any]]] = set()

        def submit_next() -> None:
            task = next(queue, None)
            if task is not None:
                in_flight.add(executor.submit(recorder.record_task, task))

        for _ in range(max(1, settings.jobs)):
            submit_next()
        while in_flight:
            finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for fut in finished:
                in_flight.discard(fut)
                record = fut.result()  # a bug in one task stops the run; finished tasks stay logged
                writer.append(record)
                recorded += 1
                spent += record_cost(record)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix_str(f"${spent:.6f}")
                submit_next()
    except BaseException:
        executor.shutdown(wait=False, cancel_futures=True)
        raise
    else:
        executor.shutdown(wait=True)
    finally:
        writer.close()
        if bar is not None:
            bar.close()
    return RecordSummary(done_before=len(done), recorded=recorded, repaired_bytes=repaired, cost_usd=spent)

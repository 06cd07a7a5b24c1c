"""Way 2, agent middleware: ``SaleMiddleware``, a SALE auction picks the model of a ``langchain.agents.create_agent`` run.

::

    from langchain.agents import create_agent
    from sale_graph import SaleMiddleware

    sale = SaleMiddleware(pool="pool.toml")
    agent = create_agent(model=sale.pool.agents[0].chat_model(phase="execute"), tools=[search],
                         middleware=[sale])
    out = agent.invoke({"messages": [("user", "What is the capital of Australia?")]})
    out["sale_auction"]["selection"]["winner"]      # who answered, and the whole auction record

Once per agent run, before the first model call (``before_agent``), the pool bids on
the turn (the latest human message in its conversation, :mod:`sale_graph.conversation`),
the jury scores the bids and the cheapest good bid wins
(a route-only auction: :class:`~sale_graph.context.SaleContext` with
``route_only=True``). The whole auction record goes into the agent state under
``sale_auction``. Every model call of the run (``wrap_model_call``) then goes to the
winner's chat model, built from the pool, with the agent's own tools bound to it and
the winning strategy appended to the system prompt. After the run (``after_agent``)
the run's model calls are added to the record's ledger (phase ``execute``) and, with
a ``grader``, the outcome goes to the auction memory, where the next auctions'
refinement uses it. Sync and async (``invoke`` / ``ainvoke``). With
``auction_per="thread"`` only a thread's first run holds an auction; later runs on the
thread (its checkpointer keeps ``sale_auction``) reuse its winner and strategy, and the
record says so (``pinned``).

The execution settings apply to the agent run as they apply to the graph's ``execute``
step (``before_model``, before every model call):

* ``execute_max_steps``, ``execute_max_tokens`` (generated tokens of the run's model
  calls) and ``execute_wall_time_s`` (from the end of the auction): when the agent wants
  another model call and a budget is used up, the run ends there, with an
  ``(no answer: ...)`` message, ``status: "budget_exhausted"`` and the reason in
  ``sale_auction["execution"]``, and a note; ``execute_step_max_tokens`` caps each call.
* ``on_execution_error``: a winner's call that fails after its retries is made again by
  the runner-up (``"fallback"``, noted; the runner-up answers the rest of the run), or the
  run stops with :class:`~sale_graph.errors.ExecutionError` naming the winner (``"raise"``).
* every retried call is in ``sale_auction["execution"]["retries"]`` and in a note, in the
  graph's words.

``search`` and ``search_first`` configure the graph's own executor tools; the agent has
its own tools, so the middleware refuses them by name.

Failures of the auction propagate (``AuctionError``, ``PoolError``, ``EndpointError``...):
the run never falls back silently to the agent's default model.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Annotated, Any, NotRequired, cast

from langchain.agents.middleware import AgentMiddleware, AgentState, ExtendedModelResponse, ModelRequest, ModelResponse
from langchain.agents.middleware.types import OmitFromInput, PrivateStateAttr, hook_config
from langchain_core.messages import AIMessage, SystemMessage
from langgraph.runtime import Runtime
from langgraph.types import Command

from sale_graph.context import SaleContext
from sale_graph.errors import ContextError, ExecutionError, SaleError, ToolCallingError
from sale_graph.executor import budget_used_up, fallback_note, retries_note, stop_note
from sale_graph.executor.grading import Outcome
from sale_graph.integrations._route_only import RouteOnlyAuction, plan_turn
from sale_graph.integrations._route_settings import KEEP, PoolSpec, route_context
from sale_graph.llm import (
    ModelFactory,
    TextToolCallingModel,
    describe_failure,
    ledger_entry,
    message_text,
    openai_factory,
    status_of,
    usage_of,
)
from sale_graph.llm.endpoint_policy import EndpointPolicy, collecting_retries
from sale_graph.llm.retries import CALL_ERRORS, describe_error
from sale_graph.memory import AuctionMemory
from sale_graph.memory.records import OUTCOMES
from sale_graph.nodes.execute import plan_b
from sale_graph.pool import AgentPool, AgentSpec
from sale_graph.state import UsageEntry, accumulate

Grader = Callable[[Mapping[str, Any]], Outcome]
"""Grades a finished agent run from its final state: ``"passed"``, ``"failed"`` or ``"unknown"``."""

STRATEGY_PROMPT = (
    "A strategy auction chose you ({agent}) for this task. Follow the winning strategy below; do not plan again.\n"
    "Winning strategy:\n{strategy}"
)
"""What is appended to the agent's system prompt; ``{agent}`` and ``{strategy}`` are filled in."""


class SaleAgentState(AgentState[Any]):
    """The agent state keys the middleware adds.

    Attributes:
        sale_auction: the whole record of this run's auction (task, bids, votes, scores, selection,
            refinement, ledger, notes), then the run's execution (who executed, model calls,
            status, outcome; the stop reason, the fallback and the retried calls when there were any).
        sale_usage: this run's model calls, one ledger line each (internal; folded into the record).
        sale_retries: this run's retried model calls, one line each (internal; folded into the record).
        sale_execution: the run's execution so far: when it started, who executes after a
            fallback, why it stopped (internal; folded into the record).
    """

    sale_auction: NotRequired[Annotated[dict[str, Any], OmitFromInput]]
    sale_usage: NotRequired[Annotated[list[UsageEntry], PrivateStateAttr, accumulate]]
    sale_retries: NotRequired[Annotated[list[str], PrivateStateAttr, accumulate]]
    sale_execution: NotRequired[Annotated[dict[str, Any], PrivateStateAttr]]


#: Settings of the graph's own executor that do not apply to an agent with its own tools: why, by name.
NOT_APPLICABLE = {
    "search": "it configures the graph's executor's web_search tool; give the agent its own search tool",
    "search_first": "it opens the graph's executor's run with a web search; the agent decides its own tool calls",
}


class SaleMiddleware(AgentMiddleware[SaleAgentState, Any]):
    """Route every model call of an agent run to the winner of a SALE auction on the run's task.

    Args:
        pool: an :class:`AgentPool`, a path to a pool TOML, or ``None`` for the embedded local
            pool; left out, the ``context``'s pool (else the embedded pool).
        context: a :class:`SaleContext` with the auction's settings (``route_only`` is forced on).
        memory: an :class:`AuctionMemory`; default: the one the settings name (``memory_dir``,
            ``memory_url``) when ``use_memory`` is on.
        grader: grades a finished run from its final state; its outcome goes to the memory.
        tools: the agent's tools, named to the bidders in the bid prompt (optional).
        model_factory: builds each agent's chat model (default: ``SaleChatOpenAI`` from the pool).
        strategy_prompt: appended to the system prompt, with ``{agent}`` and ``{strategy}``.
        **settings: more :class:`SaleContext` fields (``weights``, ``use_memory``, ``bid_max_tokens``,
            ``execute_max_steps``, ``on_execution_error``...).

    Raises:
        ContextError: a setting is not a :class:`SaleContext` field (the message lists them), or
            one that does not apply to an agent run (:data:`NOT_APPLICABLE`).
        PoolError: the pool file is missing or malformed.
        WeightsError: the weights do not fit the pool.
    """

    state_schema = SaleAgentState

    def __init__(
        self,
        pool: PoolSpec = KEEP,
        *,
        context: SaleContext | Mapping[str, Any] | None = None,
        memory: AuctionMemory | None = None,
        grader: Grader | None = None,
        tools: Sequence[Any] = (),
        model_factory: ModelFactory | None = None,
        strategy_prompt: str = STRATEGY_PROMPT,
        **settings: Any,
    ) -> None:
        super().__init__()
        self.context: SaleContext = route_context(context, pool, settings, "SaleMiddleware setting")
        _refuse_not_applicable(settings, self.context)
        self.pool: AgentPool = self.context.resolved_pool()
        self.context.resolved_weights().check_judges(self.pool.names)
        self.grader = grader
        self.strategy_prompt = strategy_prompt
        self._factory: ModelFactory = model_factory or openai_factory
        self._auction = RouteOnlyAuction(model_factory=model_factory, tools=tools, memory=memory)

    # ------------------------------------------------------------------ before the run: the auction

    def before_agent(self, state: SaleAgentState, runtime: Runtime[Any]) -> dict[str, Any] | None:
        """Run the route-only auction on this turn (its request in its conversation); store its record in ``sale_auction``."""
        turn = plan_turn(state, self.context, "SaleMiddleware")
        if turn.pinned is not None:
            return _started(turn.pinned)
        self._auction.open_memory(self.context)
        return _started(turn.record(self._auction.run(turn.inputs, self.context)))

    async def abefore_agent(self, state: SaleAgentState, runtime: Runtime[Any]) -> dict[str, Any] | None:
        """:meth:`before_agent` on asyncio (the turn and the memory in a thread; the model calls are awaited)."""
        turn = await asyncio.to_thread(plan_turn, state, self.context, "SaleMiddleware")
        if turn.pinned is not None:
            return _started(turn.pinned)
        await asyncio.to_thread(self._auction.open_memory, self.context)
        return _started(turn.record(await self._auction.arun(turn.inputs, self.context)))

    # ------------------------------------------------------------------ every model call: the winner

    @hook_config(can_jump_to=["end"])
    def before_model(self, state: SaleAgentState, runtime: Runtime[Any]) -> dict[str, Any] | None:
        """End the run, with the reason, when the agent wants another model call and a budget is used up."""
        return self._over_budget(state)

    @hook_config(can_jump_to=["end"])
    async def abefore_model(self, state: SaleAgentState, runtime: Runtime[Any]) -> dict[str, Any] | None:
        """:meth:`before_model` on asyncio (it only computes)."""
        return self._over_budget(state)

    def wrap_model_call(
        self, request: ModelRequest[Any], handler: Callable[[ModelRequest[Any]], ModelResponse[Any]]
    ) -> ExtendedModelResponse[Any]:
        """Call the executing agent's model (endpoint slot and retries as the pool says) and account for the call.

        A call that fails after its retries goes to the runner-up (``on_execution_error="fallback"``)
        or stops the run with :class:`ExecutionError` (``"raise"``).
        """
        agent, routed = self._route(request)
        retries: list[str] = []
        start = time.perf_counter()
        try:
            with collecting_retries(retries):
                return _accounted(EndpointPolicy(agent).wrap_model_call(routed, handler), agent, time.perf_counter() - start,
                                  retries)
        except CALL_ERRORS as exc:
            _raise_if_tools_refused(agent, self.pool, request, exc)
            second, rerouted, update = self._fall_back(request, agent, exc, retries)
        start = time.perf_counter()
        try:
            with collecting_retries(retries):
                response = EndpointPolicy(second).wrap_model_call(rerouted, handler)
        except CALL_ERRORS as exc:
            raise _runner_up_failed(agent, second, update, exc) from exc
        return _accounted(response, second, time.perf_counter() - start, retries, update)

    async def awrap_model_call(
        self, request: ModelRequest[Any], handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]]
    ) -> ExtendedModelResponse[Any]:
        """:meth:`wrap_model_call` on asyncio (the chat model is built in a worker thread: building one reads files)."""
        agent, routed = await asyncio.to_thread(self._route, request)
        retries: list[str] = []
        start = time.perf_counter()
        try:
            with collecting_retries(retries):
                response = await EndpointPolicy(agent).awrap_model_call(routed, handler)
            return _accounted(response, agent, time.perf_counter() - start, retries)
        except CALL_ERRORS as exc:
            _raise_if_tools_refused(agent, self.pool, request, exc)
            second, rerouted, update = await asyncio.to_thread(self._fall_back, request, agent, exc, retries)
        start = time.perf_counter()
        try:
            with collecting_retries(retries):
                response = await EndpointPolicy(second).awrap_model_call(rerouted, handler)
        except CALL_ERRORS as exc:
            raise _runner_up_failed(agent, second, update, exc) from exc
        return _accounted(response, second, time.perf_counter() - start, retries, update)

    def _route(self, request: ModelRequest[Any], fallback: Mapping[str, Any] | None = None) -> tuple[AgentSpec, ModelRequest[Any]]:
        """Who executes (the winner, or the runner-up after a fallback) and the request with its model and strategy."""
        state = cast(Mapping[str, Any], request.state)
        record = state.get("sale_auction")
        if not record or "selection" not in record:
            raise SaleError(
                "SaleMiddleware: the agent state holds no auction ('sale_auction'); the auction runs in "
                "before_agent, so this run started without the middleware (resumed from an older checkpoint?): "
                "start a new run"
            )
        execution = fallback or state.get("sale_execution") or {}
        name = execution.get("agent") or record["selection"]["winner"]
        strategy = execution.get("strategy") or record["selection"]["strategy"]
        agent = self.pool.get(name)
        model: Any = self._factory(agent, phase="execute", max_tokens=self.context.cap("execute_step", agent), logprobs=False)
        if request.tools and agent.tool_calling == "text":
            model = TextToolCallingModel(inner=model)
        note = self.strategy_prompt.format(agent=agent.name, strategy=strategy)
        current = request.system_message.text if request.system_message is not None else ""
        system = SystemMessage(content=f"{current}\n\n{note}" if current else note)
        return agent, request.override(model=model, system_message=system)

    def _fall_back(self, request: ModelRequest[Any], failed: AgentSpec, exc: BaseException,
                   retries: list[str]) -> tuple[AgentSpec, ModelRequest[Any], dict[str, Any]]:
        """The runner-up, the request routed to it, and the execution state after the fallback.

        Raises:
            ExecutionError: ``on_execution_error="raise"``, a second failure, or no other agent bid.
        """
        state = cast(Mapping[str, Any], request.state)
        execution = dict(state.get("sale_execution") or {})
        failure = describe_error(exc) + (f" (after {len(retries)} retried call(s))" if retries else "")
        if execution.get("fallback_from"):  # the runner-up already took over: nobody is left to fall back to
            raise ExecutionError(f"the runner-up {failed.name!r} failed to execute too, after the winner "
                                 f"{execution['fallback_from']!r}: its endpoint failed: {failure}") from exc
        detail = f"the winner's endpoint failed: {failure}"
        name, strategy = plan_b(state["sale_auction"], self.context, failed.name, detail)
        execution.update(agent=name, strategy=strategy, fallback_from=failed.name, fallback_detail=detail)
        agent, rerouted = self._route(request, execution)
        return agent, rerouted, execution

    def _over_budget(self, state: Mapping[str, Any]) -> dict[str, Any] | None:
        """The update that ends the run when a budget is used up (``None`` while every budget has room)."""
        usage: list[UsageEntry] = list(state.get("sale_usage") or [])
        execution = dict(state.get("sale_execution") or {})
        record = state.get("sale_auction") or {}
        if not usage or "selection" not in record:  # the run's first call always goes ahead
            return None
        started = float(execution.get("started", time.time()))
        detail = budget_used_up(self.context, len(usage), sum(e["output_tokens"] for e in usage), time.time() - started)
        if detail is None:
            return None
        execution.update(status="budget_exhausted", detail=detail)
        name = execution.get("agent") or record["selection"]["winner"]
        return {"jump_to": "end", "sale_execution": execution,
                "messages": [AIMessage(content=f"(no answer: {detail})", name=name)]}

    # ------------------------------------------------------------------ after the run: ledger and outcome

    def after_agent(self, state: SaleAgentState, runtime: Runtime[Any]) -> dict[str, Any] | None:
        """Add the run's model calls to the auction's ledger; grade the run and store the outcome."""
        return self._finish(state)

    async def aafter_agent(self, state: SaleAgentState, runtime: Runtime[Any]) -> dict[str, Any] | None:
        """:meth:`after_agent` on asyncio (the grader and the memory run in a thread)."""
        return await asyncio.to_thread(self._finish, state)

    def _finish(self, state: Mapping[str, Any]) -> dict[str, Any] | None:
        record = state.get("sale_auction")
        if not record:
            return None
        usage: list[UsageEntry] = list(state.get("sale_usage") or [])
        retries: list[str] = list(state.get("sale_retries") or [])
        run: Mapping[str, Any] = state.get("sale_execution") or {}
        record = {**record, "ledger": [*record.get("ledger", []), *usage]}
        execution: dict[str, Any] = {"agent": run.get("agent") or record["selection"]["winner"], "model_calls": len(usage),
                                     "status": run.get("status", "completed"), "outcome": "unknown"}
        notes: list[str] = []
        if run.get("fallback_from"):
            execution["fallback_from"] = run["fallback_from"]
            notes.append(fallback_note(run["fallback_from"], run["fallback_detail"], execution["agent"]))
        if run.get("detail"):
            execution["detail"] = run["detail"]
            notes.append(stop_note(run["detail"]))
        if retries:
            execution["retries"] = retries
            notes.append(retries_note(retries))
        record["notes"] = [*record.get("notes", []), *notes]
        if self.grader is not None:
            execution["outcome"] = outcome = self._grade(state)
            record["notes"].append(self._store_outcome(record, outcome))
        record["execution"] = execution
        return {"sale_auction": record, "sale_usage": None, "sale_retries": None, "sale_execution": {}}

    def _grade(self, state: Mapping[str, Any]) -> Outcome:
        assert self.grader is not None
        outcome = self.grader(state)
        if outcome not in OUTCOMES:
            raise ValueError(f"SaleMiddleware grader {self.grader!r} returned {outcome!r}; it must return one of {OUTCOMES}")
        return outcome

    def _store_outcome(self, record: dict[str, Any], outcome: Outcome) -> str:
        """Attach the outcome to the recorded auction; a memory failure is a note, the run's answer is kept."""
        try:
            memory = self._auction.open_memory(self.context)
            if memory is None:
                return f"outcome {outcome!r} not stored: memory is off (use_memory=False)"
            memory.update_outcome(record["auction_id"], outcome)
        except Exception as exc:  # the answer is already paid for: report, do not lose it
            record["memory_error"] = f"{type(exc).__name__}: {exc}"
            return f"MEMORY WRITE FAILED, outcome {outcome!r} not stored: {record['memory_error']}"
        return f"outcome {outcome!r} stored in the auction memory"


def _started(record: dict[str, Any]) -> dict[str, Any]:
    """The state update that starts a run: the auction's record, no model calls yet, the execution's clock started."""
    return {"sale_auction": record, "sale_usage": None, "sale_retries": None, "sale_execution": {"started": time.time()}}


def _refuse_not_applicable(settings: Mapping[str, Any], ctx: SaleContext) -> None:
    """Raise :class:`ContextError` for a setting of the graph's executor given to the middleware."""
    given = [k for k in NOT_APPLICABLE if k in settings or (k == "search" and ctx.search is not None)]
    if given:
        raise ContextError("; ".join(f"SaleMiddleware setting {k!r} does not apply to an agent run: {NOT_APPLICABLE[k]}"
                                     for k in given))


def _accounted(response: ModelResponse[Any], agent: AgentSpec, seconds: float, retries: list[str],
               execution: Mapping[str, Any] | None = None) -> ExtendedModelResponse[Any]:
    """The model's response, with its ledger line (phase ``execute``), retried calls and a fallback added to the state."""
    message = next((m for m in response.result if isinstance(m, AIMessage)), None)
    n_in, n_out, reported = usage_of(message, message_text(message)) if message is not None else (0, 0, False)
    update: dict[str, Any] = {"sale_usage": [ledger_entry("execute", agent, n_in, n_out, seconds, reported)]}
    if retries:
        update["sale_retries"] = list(retries)
    if execution is not None:
        update["sale_execution"] = dict(execution)
    return ExtendedModelResponse(model_response=response, command=Command(update=update))


def _runner_up_failed(winner: AgentSpec, runner_up: AgentSpec, execution: Mapping[str, Any], exc: BaseException) -> ExecutionError:
    """The error when the runner-up's call fails too, after the winner's: nobody is left to answer."""
    return ExecutionError(f"the winner {winner.name!r} failed to execute ({execution['fallback_detail']}) and the "
                          f"runner-up {runner_up.name!r} failed too: {describe_error(exc)}")


def _raise_if_tools_refused(agent: AgentSpec, pool: AgentPool, request: ModelRequest[Any], exc: BaseException) -> None:
    """Raise :class:`ToolCallingError` when the winner's endpoint refused the request for its tools."""
    if not request.tools or agent.tool_calling != "native":
        return
    if status_of(exc) in (400, 422, 500, 501) and "tool" in str(exc).lower():
        raise ToolCallingError(
            f"agent {agent.name!r} at {agent.base_url} won the auction but its endpoint refused the agent's tools "
            f"({describe_failure(exc)}): it makes no native tool calls. Set tool_calling = \"text\" for "
            f"{agent.name!r} in the pool ({pool.source}) to call the tools through text actions, or serve the model "
            "with tool calling on (vLLM: --enable-auto-tool-choice --tool-call-parser <parser>; llama.cpp: --jinja)"
        ) from exc


__all__ = ["NOT_APPLICABLE", "STRATEGY_PROMPT", "Grader", "SaleAgentState", "SaleMiddleware"]

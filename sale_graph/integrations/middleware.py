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

Failures of the auction propagate (``AuctionError``, ``PoolError``, ``EndpointError``...):
the run never falls back silently to the agent's default model.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Annotated, Any, NotRequired, cast

from langchain.agents.middleware import AgentMiddleware, AgentState, ExtendedModelResponse, ModelRequest, ModelResponse
from langchain.agents.middleware.types import OmitFromInput, PrivateStateAttr
from langchain_core.messages import AIMessage, SystemMessage
from langgraph.runtime import Runtime
from langgraph.types import Command

from sale_graph.context import SaleContext
from sale_graph.errors import SaleError, ToolCallingError
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
from sale_graph.llm.endpoint_policy import EndpointPolicy
from sale_graph.memory import AuctionMemory
from sale_graph.memory.records import OUTCOMES
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
            refinement, ledger, notes), then the run's execution (winner, model calls, outcome).
        sale_usage: this run's model calls, one ledger line each (internal; folded into the record).
    """

    sale_auction: NotRequired[Annotated[dict[str, Any], OmitFromInput]]
    sale_usage: NotRequired[Annotated[list[UsageEntry], PrivateStateAttr, accumulate]]


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
        **settings: more :class:`SaleContext` fields (``weights``, ``use_memory``, ``bid_max_tokens``...).

    Raises:
        ContextError: a setting is not a :class:`SaleContext` field (the message lists them).
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

    def wrap_model_call(
        self, request: ModelRequest[Any], handler: Callable[[ModelRequest[Any]], ModelResponse[Any]]
    ) -> ExtendedModelResponse[Any]:
        """Call the winner's model (endpoint slot and retries as the pool says) and account for the call."""
        agent, routed = self._route(request)
        start = time.perf_counter()
        try:
            response = EndpointPolicy(agent).wrap_model_call(routed, handler)
        except Exception as exc:
            _raise_if_tools_refused(agent, self.pool, request, exc)
            raise
        return _accounted(response, agent, time.perf_counter() - start)

    async def awrap_model_call(
        self, request: ModelRequest[Any], handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]]
    ) -> ExtendedModelResponse[Any]:
        """:meth:`wrap_model_call` on asyncio."""
        agent, routed = self._route(request)
        start = time.perf_counter()
        try:
            response = await EndpointPolicy(agent).awrap_model_call(routed, handler)
        except Exception as exc:
            _raise_if_tools_refused(agent, self.pool, request, exc)
            raise
        return _accounted(response, agent, time.perf_counter() - start)

    def _route(self, request: ModelRequest[Any]) -> tuple[AgentSpec, ModelRequest[Any]]:
        """The winner and the request with its model and the winning strategy in the system prompt."""
        record = cast(Mapping[str, Any], request.state).get("sale_auction")
        if not record or "selection" not in record:
            raise SaleError(
                "SaleMiddleware: the agent state holds no auction ('sale_auction'); the auction runs in "
                "before_agent, so this run started without the middleware (resumed from an older checkpoint?): "
                "start a new run"
            )
        selection = record["selection"]
        agent = self.pool.get(selection["winner"])
        model: Any = self._factory(agent, phase="execute", max_tokens=self.context.cap("execute_step", agent), logprobs=False)
        if request.tools and agent.tool_calling == "text":
            model = TextToolCallingModel(inner=model)
        note = self.strategy_prompt.format(agent=agent.name, strategy=selection["strategy"])
        current = request.system_message.text if request.system_message is not None else ""
        system = SystemMessage(content=f"{current}\n\n{note}" if current else note)
        return agent, request.override(model=model, system_message=system)

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
        record = {**record, "ledger": [*record.get("ledger", []), *usage]}
        execution: dict[str, Any] = {"agent": record["selection"]["winner"], "model_calls": len(usage), "outcome": "unknown"}
        if self.grader is not None:
            execution["outcome"] = outcome = self._grade(state)
            record["notes"] = [*record.get("notes", []), self._store_outcome(record, outcome)]
        record["execution"] = execution
        return {"sale_auction": record, "sale_usage": None}

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
    """The state update that starts a run: the auction's record, and no model calls yet."""
    return {"sale_auction": record, "sale_usage": None}


def _accounted(response: ModelResponse[Any], agent: AgentSpec, seconds: float) -> ExtendedModelResponse[Any]:
    """The model's response, with its ledger line (phase ``execute``) added to the run's state."""
    message = next((m for m in response.result if isinstance(m, AIMessage)), None)
    n_in, n_out, reported = usage_of(message, message_text(message)) if message is not None else (0, 0, False)
    entry = ledger_entry("execute", agent, n_in, n_out, seconds, reported)
    return ExtendedModelResponse(model_response=response, command=Command(update={"sale_usage": [entry]}))


def _raise_if_tools_refused(agent: AgentSpec, pool: AgentPool, request: ModelRequest[Any], exc: Exception) -> None:
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


__all__ = ["STRATEGY_PROMPT", "Grader", "SaleAgentState", "SaleMiddleware"]

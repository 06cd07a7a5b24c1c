"""Way 1, a subgraph: the SALE auction as one step of a LangGraph app; the winner executes.

The auction runs whole (bids, jury, selection, refinement, execution, memory) inside
the app's graph. There are two shapes, and they differ in how the app's state
meets the auction's.

**(a) A compiled subgraph as a node, sharing state keys.**
:func:`sale_subgraph` (or ``build_sale_graph().compile()``) is added to the parent
directly::

    parent.add_node("sale", sale_subgraph())

LangGraph then hands the parent's state to the auction and writes its result back
*by key name*:

* keys read from the parent (:data:`SHARED_INPUT_KEYS`, the fields of
  :class:`~sale_graph.state.SaleInput`): ``task`` (required), and when the parent
  declares them ``request_id``, ``task_id``, ``domain``, ``gold``, ``tests``,
  ``entry_point``;
* keys written back (:data:`SHARED_OUTPUT_KEYS`, the fields of
  :class:`~sale_graph.state.SaleOutput`), each only if the parent declares it (the
  others are dropped silently): ``task``, ``auction_id``, ``answer``, ``selection``,
  ``scores``, ``execution``, ``ledger``, ``bids``, ``votes``, ``refinement``, ``notes``.

Declare the written-back keys in the parent *without* a reducer (or with a
last-value one): the auction returns each list whole, so an appending reducer would
mix several auctions' bids. Every run gets a fresh ``auction_id`` (a parent that
declares it just sees the latest). A parent that declares ``request_id`` (a
caller-chosen auction id) gets it cleared after each run (``None`` is written
back), so the next auction on the thread gets a fresh id unless the parent sets a
new one (:func:`shared_key_problems` warns about the reducer case).

**(b) A function node with its own schema.** :func:`sale_as_node` wraps the
compiled auction in a node that maps the parent's state to a
:class:`~sale_graph.state.SaleInput` and the :class:`~sale_graph.state.SaleOutput`
back to a parent update, so the parent's keys can be named anything::

    parent.add_node("route", sale_as_node(
        input_map=lambda s: {"task": s["question"]},
        output_map=lambda out: {"draft": out["answer"], "winner": out["selection"]["winner"]},
    ))

In both shapes the subgraph runs inside the parent's run: it inherits the parent's
runtime context (a :class:`~sale_graph.context.SaleContext` or a dict of its
fields, unless ``context=`` says otherwise), its checkpointer (the approval
``interrupt`` pauses the *parent* and ``Command(resume=...)`` on the parent's
thread resumes the auction) and its stream (``stream(..., subgraphs=True)``
shows the auction's ``custom`` progress events and node updates under the
subgraph's namespace).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any, NotRequired, Required, TypeVar, cast, get_args, get_origin

from langgraph.config import get_config
from langgraph.runtime import Runtime
from typing_extensions import ReadOnly, get_type_hints

from sale_graph.context import SaleContext, context_from
from sale_graph.graph import build_sale_graph
from sale_graph.nodes import Node
from sale_graph.state import SaleInput, SaleOutput

ParentState = TypeVar("ParentState")

#: Keys the auction reads from a parent's state when added as a node (shape a).
SHARED_INPUT_KEYS: tuple[str, ...] = tuple(SaleInput.__annotations__)
#: Keys the auction writes back to a parent's state, where the parent declares them (shape a).
SHARED_OUTPUT_KEYS: tuple[str, ...] = tuple(SaleOutput.__annotations__)

ContextSpec = SaleContext | Mapping[str, Any] | Callable[[Any], "SaleContext | Mapping[str, Any] | None"] | None


def sale_subgraph(**build_kwargs: Any) -> Any:
    """The auction compiled for use as a node of a parent graph that shares its keys (shape a).

    It is compiled without a checkpointer of its own, so it uses the parent's.
    ``build_kwargs`` go to :func:`~sale_graph.graph.build_sale_graph` (``model_factory``,
    ``tools``, ``memory``).
    """
    return build_sale_graph(**build_kwargs).compile(name="sale")


def shared_key_problems(parent_schema: type) -> list[str]:
    """Reasons why ``parent_schema`` will not share keys with the auction as intended (shape a).

    Returns an empty list when the schema is fine: it has a ``task`` key and
    declares no written-back list with a reducer (see the module docstring).
    """
    hints = get_type_hints(parent_schema, include_extras=True)
    problems: list[str] = []
    if "task" not in hints:
        problems.append("the parent state has no 'task' key: the auction would get no task")
    for key in SHARED_OUTPUT_KEYS:
        if key in hints and _has_reducer(hints[key]):
            problems.append(f"'{key}' has a reducer in the parent: the auction returns it whole, so runs would pile up")
    return problems


def _has_reducer(hint: Any) -> bool:
    while get_origin(hint) in (NotRequired, Required, ReadOnly):
        hint = get_args(hint)[0]
    return get_origin(hint) is Annotated and any(callable(m) for m in get_args(hint)[1:])


def _resolve_context(spec: ContextSpec, parent_context: Any) -> SaleContext | Mapping[str, Any] | None:
    if spec is None:
        return parent_context
    if callable(spec) and not isinstance(spec, (SaleContext, Mapping)):
        return spec(parent_context)
    return spec


def sale_as_node(
    input_map: Callable[[ParentState], SaleInput | Mapping[str, Any]],
    output_map: Callable[[SaleOutput], dict[str, Any]],
    *,
    context: ContextSpec = None,
    **build_kwargs: Any,
) -> Node:
    """Wrap the auction in a node with the parent's own schema (shape b).

    Args:
        input_map: parent state -> the auction's input (at least ``{"task": ...}``).
        output_map: the auction's output (:class:`SaleOutput`) -> the parent's state update.
        context: the auction's settings. ``None`` (default) passes the parent run's context
            through (it must then be a :class:`SaleContext` or a dict of its fields); a
            :class:`SaleContext` or dict fixes them; a callable maps the parent's context
            to them (for parents with a context schema of their own).
        build_kwargs: passed to :func:`~sale_graph.graph.build_sale_graph`
            (``model_factory``, ``tools``, ``memory``).

    The node calls the compiled auction with the parent's ``config``, so the auction
    runs as a true subgraph: it uses the parent's checkpointer (the approval interrupt
    pauses the parent; resuming the parent resumes the auction where it stopped), and
    its progress events and node updates reach the parent's ``stream(...,
    subgraphs=True)``. The compiled auction is exposed as the node's ``subgraph``
    attribute.
    """
    subgraph = build_sale_graph(**build_kwargs).compile(name="sale")

    def sale(state: ParentState, runtime: Runtime[Any]) -> dict[str, Any]:
        """Run one SALE auction on the task mapped from the parent's state."""
        inputs = cast(SaleInput, dict(input_map(state)))  # the auction validates the task itself (prepare)
        ctx = context_from(_resolve_context(context, runtime.context))
        out = cast(SaleOutput, subgraph.invoke(inputs, config=get_config(), context=ctx))
        return output_map(out)

    sale.subgraph = subgraph  # type: ignore[attr-defined]
    return sale


__all__ = [
    "SHARED_INPUT_KEYS",
    "SHARED_OUTPUT_KEYS",
    "sale_as_node",
    "sale_subgraph",
    "shared_key_problems",
]

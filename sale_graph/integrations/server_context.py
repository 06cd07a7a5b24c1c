"""Unknown context keys through the LangGraph API server are an error naming the allowed keys.

What the server does today (langgraph-api 0.16, ``langgraph dev``): a run's ``context``
is filtered against the graph's context JSON schema before the graph sees it
(``langgraph_api.stream._filter_context_by_schema``): a key the schema lacks, such as
a misspelt ``use_memmory``, is dropped with a debug log line, and the run goes on
with the default (the memory stays on). The graph itself cannot tell: the key is gone
from ``context`` and from the mirrored ``configurable``.

The one place that sees the context as the caller sent it is a graph *factory*: for
every run the server calls the exported object, when it is callable, with a
``ServerRuntime`` whose ``execution_runtime.context`` is the unfiltered context
(LangGraph's documented factory hook). :func:`strict_context` turns a compiled graph
into such an object that is still the compiled graph (so ``from examples.auction_graph
import graph; graph.invoke(...)`` works as before): the server calls it, it checks the keys
and raises :class:`~sale_graph.errors.ContextError`, which fails the run
with the message (``runs.wait(...)`` returns it; the thread stays usable).
"""

# No ``from __future__ import annotations`` here: the server tells a runtime factory from a
# config factory by the *evaluated* annotation of its parameter (``ServerRuntime``).
import dataclasses
from collections.abc import Mapping
from typing import Any

from langgraph.graph.state import CompiledStateGraph
from langgraph_sdk.runtime import ServerRuntime
from pydantic import BaseModel
from typing_extensions import get_type_hints

from sale_graph.errors import ContextError, unknown_keys_message


def context_keys(schema: Any) -> list[str] | None:
    """The field names of a context schema (dataclass, pydantic model or TypedDict); ``None``: not known."""
    if schema is None:
        return None
    if dataclasses.is_dataclass(schema):
        return [f.name for f in dataclasses.fields(schema)]
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        return list(schema.model_fields)
    try:
        return list(get_type_hints(schema))
    except TypeError:
        return None


def check_context(context: Any, schema: Any, graph_name: str = "graph") -> None:
    """Raise :class:`ContextError` when a dict ``context`` has a key that ``schema`` lacks.

    Args:
        context: the run's context as the caller sent it (only dicts are checked).
        schema: the graph's context schema.
        graph_name: named in the message.

    Raises:
        ContextError: naming each unknown key, its closest allowed key, and every allowed key.
    """
    allowed = context_keys(schema)
    if not isinstance(context, Mapping) or allowed is None:
        return
    unknown = set(context) - set(allowed)
    if unknown:
        raise ContextError(unknown_keys_message(unknown, allowed, f"{graph_name!r} context"))


class ContextCheckedGraph(CompiledStateGraph[Any, Any, Any, Any]):
    """A compiled graph that is also its own LangGraph API factory, refusing unknown context keys.

    Everywhere else it is the compiled graph it was made from.
    """

    def __call__(self, runtime: ServerRuntime) -> "ContextCheckedGraph":
        """The factory the API server calls for each run: check the run's context, return the graph.

        Raises:
            ContextError: the run's context has a key the graph's context schema lacks.
        """
        execution = runtime.execution_runtime
        if execution is not None:
            check_context(execution.context, self.builder.context_schema, self.name)
        return self


def strict_context(graph: CompiledStateGraph[Any, Any, Any, Any]) -> ContextCheckedGraph:
    """``graph`` as a :class:`ContextCheckedGraph`: export it in ``langgraph.json`` to refuse unknown context keys.

    Args:
        graph: a compiled graph (with no checkpointer, as the server wants).

    Returns:
        The same graph (same nodes, channels and settings), callable as a server factory.
    """
    attrs = {k: v for k, v in graph.__dict__.items() if k != "__orig_class__"}  # what Pregel.copy passes on
    return ContextCheckedGraph(**attrs)


__all__ = ["ContextCheckedGraph", "check_context", "context_keys", "strict_context"]

"""Every error a run of the graph can raise, all rooted at :class:`SaleError`.

Every error that reports bad input or an unusable endpoint (a malformed pool or
weights file, an unreachable or refusing endpoint, a jury below its quorum, a task
with no text, a missing search corpus or sandbox...) derives from
:class:`SaleError` as well as from the built-in class it always had (``ValueError``,
``RuntimeError``), so callers can catch either. The ``sale`` command prints a
``SaleError`` as one line naming the input at fault and what to do, and exits
non-zero; anything else is a bug and keeps its traceback.

The settings: :class:`ContextError`, :class:`PoolError`, :class:`WeightsError`.
The task: :class:`TaskError`. The endpoints: :class:`EndpointError`,
:class:`ServerError` (the embedded pool's servers). The auction:
:class:`AuctionError`, :class:`ApprovalError`, :class:`ResumeError`,
:class:`ExecutionError`. All are exported from :mod:`sale_graph`.

The memory (:class:`~sale_graph.memory.MemoryStoreError`), the code sandbox, the
search backends and the benchmark harness keep their errors in their own modules.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class SaleError(Exception):
    """An error the user can fix: its message names the input at fault and what to do."""


class ContextError(SaleError, ValueError):
    """A run's settings name a key :class:`~sale_graph.context.SaleContext` does not have."""


class RouteError(SaleError, ValueError):
    """A ``sale_router`` route is missing, names an agent the pool lacks, or a node the graph lacks."""


class ToolCallingError(SaleError, ValueError):
    """The auction's winner cannot call the agent's tools natively and text tool calling is not configured."""


class PoolError(SaleError, ValueError):
    """A pool config is malformed or one of its endpoints cannot be used."""


class WeightsError(SaleError, ValueError):
    """A weights file or value is malformed."""


class TaskError(SaleError, ValueError):
    """The task given to the auction is unusable."""


class EndpointError(SaleError, RuntimeError):
    """An agent's endpoint refuses every call (bad key, wrong URL, unknown model): fix the pool file."""


class ServerError(SaleError, RuntimeError):
    """The embedded model server could not be started or is not healthy."""


class AuctionError(SaleError, RuntimeError):
    """The auction cannot go on (for example, no agent produced a bid)."""


class ApprovalError(SaleError, ValueError):
    """The human's answer to the approval step is neither an approval nor an agent that bid."""


class ResumeError(SaleError, RuntimeError):
    """A paused run was resumed with a different runtime context than it started with."""


class ExecutionError(SaleError, RuntimeError):
    """The winner's endpoint failed during execution and no fallback was allowed or possible."""


def unknown_keys_message(unknown: Iterable[str], allowed: Iterable[str], where: str) -> str:
    """The sentence naming unknown setting keys, the closest allowed key of each, and every allowed key.

    Args:
        unknown: the keys that are not allowed.
        allowed: every allowed key.
        where: what held the keys (``"context"``, ``"SaleMiddleware settings"``...).

    Returns:
        One line, e.g. ``unknown context key 'use_memmory' (did you mean 'use_memory'?); allowed: pool, ...``.
    """
    allowed = list(allowed)
    parts = []
    for key in sorted(unknown):
        close = difflib.get_close_matches(key, allowed, n=1)
        parts.append(f"{key!r} (did you mean {close[0]!r}?)" if close else repr(key))
    noun = "key" if len(parts) == 1 else "keys"
    return f"unknown {where} {noun} {', '.join(parts)}; allowed: {', '.join(allowed)}"

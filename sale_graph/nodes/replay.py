"""Paid calls made again when a run resumes an interrupted step (a killed process, a lost worker).

With a persistent checkpointer, LangGraph saves each finished task's writes as soon as it
finishes, and a run resumed on the thread (``graph.invoke(None, config)``) re-runs only the
tasks of the interrupted step that had not finished: a bid or a vote whose answer was
recorded is never asked again. A task that was *in flight* when the process died is run
again, and its first call may already have been paid (the endpoint answered, or went on
generating, after the client died). Nothing in the checkpoint says whether such a task had
started, so every paid task of a resumed step is treated alike: its ledger lines are
flagged ``replayed`` and a note names the call, so the possible second payment is visible,
never hidden. The lost first call is not in the ledger (its usage never came back).

Before such a task pays, its run context is checked against the one the run started with
(:func:`~sale_graph.nodes._common.check_fingerprint`): a process that resumes with another
pool, other weights or no context at all fails with a :class:`~sale_graph.errors.ResumeError`
instead of paying on the wrong endpoints.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langgraph.config import get_config

from sale_graph.context import SaleContext
from sale_graph.nodes._common import check_fingerprint

RESUMING_KEY = "__pregel_resuming"
"""LangGraph's ``CONFIG_KEY_RESUMING`` (``langgraph._internal._constants``, not exported): set in a
task's config only during the first step of a run that resumed from a checkpoint, which is the
interrupted step (a subgraph gets it from its parent). ``tests/unit/test_replay.py`` checks that."""


def resumed_task() -> bool:
    """Whether the running task is one of an interrupted step that a resumed run makes again.

    Returns:
        ``True`` inside a graph task run by the first step of a resumed run; ``False``
        otherwise, and outside a graph (a node function called directly).
    """
    try:
        config = get_config()
    except RuntimeError:  # not inside a runnable: a node called directly (benchmarks, tests)
        return False
    return bool((config.get("configurable") or {}).get(RESUMING_KEY))


def replay_guard(started: Mapping[str, Any] | None, ctx: SaleContext) -> bool:
    """Whether the task about to pay is made again by a resumed run; if so, check its context first.

    Args:
        started: the run's fingerprint as the task was scheduled (its payload's ``run_fingerprint``,
            or the state's ``run_context["fingerprint"]``); ``None`` skips the check.
        ctx: the context the resumed run goes on with.

    Returns:
        Whether the task is replayed (its update then goes through :func:`mark_replayed`).

    Raises:
        ResumeError: the run is resumed with another pool, other weights or approval setting.
    """
    if not resumed_task():
        return False
    check_fingerprint(started, ctx)
    return True


def replay_note(call: str) -> str:
    """The note of a paid call made again by a resumed run; ``call`` names it (``"jury call of a on b (original)"``)."""
    return (f"{call} was made again after the run resumed: its task had not finished when the run stopped; "
            "if the call was in flight then, it was paid twice (the lost call is not in the ledger)")


def mark_replayed(update: dict[str, Any], call: str) -> dict[str, Any]:
    """Flag ``update``'s ledger lines ``replayed`` and add the :func:`replay_note` of ``call``; returns ``update``.

    Args:
        update: a paid node's state update (its ``ledger`` and ``notes`` lists).
        call: what the call was, for the note.

    Returns:
        The same update, changed in place.
    """
    update["ledger"] = [{**entry, "replayed": True} for entry in update.get("ledger", [])]
    update["notes"] = [*update.get("notes", []), replay_note(call)]
    return update

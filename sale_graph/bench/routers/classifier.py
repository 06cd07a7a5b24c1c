"""LangChain's model router as a baseline, the replay side: ``llm-classifier``.

The recorder makes one text-classifier call per task, as langchain's ``ModelRouterMiddleware``
does, and logs its choice in the record's ``classifier``
(:mod:`sale_graph.bench.runs.classifier_call`). :class:`ClassifierRouter` (``llm-classifier``)
replays it: each task goes to the recorded choice, evaluated on the plain executions like the
other text routers, charged the classifier call on top; a task without a usable choice falls
back, visibly and counted, to the cheapest agent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from sale_graph.bench.market.market import Market
from sale_graph.bench.routers.base import Decisions, Router


def classifier_choice(record: Mapping[str, Any]) -> tuple[str | None, str]:
    """``(choice, reason)`` recorded for one task; ``(None, reason)`` when there is none."""
    c = record.get("classifier")
    if not isinstance(c, dict):
        return None, "no classifier record"
    if c.get("choice") is None:
        return None, str(c.get("reason") or "no choice")
    return str(c["choice"]), "ok"


def has_classifier(market: Market) -> bool:
    """Whether any record of the log has a classifier record (old logs have none)."""
    return any(isinstance(r.get("classifier"), dict) for r in market.records)


def fallback_tasks(market: Market, idx: np.ndarray) -> dict[str, str]:
    """``{task id: reason}`` of the tasks in ``idx`` whose recorded choice is missing or not a pool agent."""
    out = {}
    for t in np.asarray(idx, dtype=int):
        choice, reason = classifier_choice(market.records[t])
        if choice not in market.agents:
            out[market.task_ids[t]] = reason if choice is None else f"{choice!r} not in the pool"
    return out


class ClassifierRouter(Router):
    """``llm-classifier``: the recorded choice of one text-classifier call per task, charged on top.

    A task with no usable choice (no record, or an answer naming no pool agent) goes to
    the fallback, the cheapest agent; :attr:`fallbacks` counts them (the report shows it).
    """

    name = "llm-classifier"
    fallback = "cheapest agent"

    def choose(self, market: Market, idx: np.ndarray) -> np.ndarray:
        """The recorded choice per task, the cheapest agent where there is none (see :func:`fallback_tasks`)."""
        idx = np.asarray(idx, dtype=int)
        out = np.full(len(idx), market.price_order()[0], dtype=int)
        for k, t in enumerate(idx):
            choice, _ = classifier_choice(market.records[t])
            if choice in market.agents:
                out[k] = market.agents.index(choice)
        return out

    def decide(self, market: Market, idx: np.ndarray) -> Decisions:
        """The choices, with the classifier call's dollars, tokens and seconds as overhead."""
        idx = np.asarray(idx, dtype=int)
        cost, tokens, seconds = np.zeros(len(idx)), np.zeros(len(idx)), np.zeros(len(idx))
        for k, t in enumerate(idx):
            c = market.records[t].get("classifier")
            if isinstance(c, dict):
                cost[k] = float(c.get("cost_usd", 0.0))
                tokens[k] = float(c.get("input_tokens", 0)) + float(c.get("output_tokens", 0))
                seconds[k] = float(c.get("seconds", 0.0))
        return Decisions(idx, self.choose(market, idx), cost, tokens, seconds)

    def note(self, market: Market, idx: np.ndarray) -> str:
        """The report's line on this router: what it is and how many of tasks ``idx`` fell back."""
        missing = fallback_tasks(market, idx)
        reasons = sorted({r for r in missing.values()})[:3]
        return (f"llm-classifier mirrors langchain's ModelRouterMiddleware: one call of a classifier agent per task "
                f"picks an agent from the task text and each agent's criteria; it is evaluated on the plain executions "
                f"and charged that call. {len(missing)} of {len(idx)} tasks had no usable choice and FELL BACK to the "
                f"{self.fallback}" + (f" (e.g. {'; '.join(reasons)})" if reasons else ""))

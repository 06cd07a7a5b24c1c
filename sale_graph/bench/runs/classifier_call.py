"""LangChain's model router as a baseline, the recording side: one text-classifier call per task.

langchain 1.x ships a beta ``ModelRouterMiddleware``
(``langchain/agents/middleware/model_router.py``, langchain 1.5.2). Before an agent run it
asks a decision model ONE categorical question about the latest human message: a
``langchain_core.decisions.Choice`` whose ``instructions`` say what to judge and whose
``criteria`` map each route label to a description of the tasks suited to it; the answer
is a ``ChoiceAnswer`` whose ``choice`` is one of those labels, and every model call of the
run goes to that route. A classifier failure propagates rather than silently picking a model.

The recorder mirrors that shape with a chat model of the pool (default: its cheapest agent):
the prompt carries the same three parts (instructions, the task text as the state, the
criteria as a JSON object label -> description) and asks for the ``ChoiceAnswer`` shape,
``{"choice": "<label>"}``. The labels are the pool's agent names; each criterion is the
agent's name and price plus an optional user description (``--criteria FILE``). The raw
answer, the parsed choice (``None`` with the reason when it names no pool agent: never a
silent default), and the call's tokens and dollars go into the record's ``classifier``.

The replay of these records is :class:`sale_graph.bench.routers.classifier.ClassifierRouter`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from langchain_core.messages import HumanMessage

from sale_graph.llm import call_model

QUESTION_ID = "model_route"
"""The question id ``ModelRouterMiddleware`` asks under (``_QUESTION_ID``)."""
INSTRUCTIONS = "Choose the least costly model suited to the task."
"""The routing instructions (those of the middleware's documented example)."""


def agent_criteria(agents: Sequence[Any], descriptions: Mapping[str, str] | None = None) -> dict[str, str]:
    """Each agent's criterion: name and price, plus the user's description when given.

    Args:
        agents: the pool's agents (objects with ``name`` and ``price_output``, dollars per 1M tokens).
        descriptions: optional ``{agent name: text}`` (``--criteria FILE``).

    Returns:
        ``{agent name: criterion}`` in pool order.

    Raises:
        ValueError: when ``descriptions`` names an agent not in the pool.
    """
    descriptions = dict(descriptions or {})
    names = [a.name for a in agents]
    unknown = sorted(set(descriptions) - set(names))
    if unknown:
        raise ValueError(f"classifier criteria name agents not in the pool: {unknown} (pool: {names})")
    out = {}
    for a in agents:
        text = f"Agent {a.name}, ${a.price_output:g} per 1M output tokens."
        if descriptions.get(a.name):
            text += " " + str(descriptions[a.name]).strip()
        out[a.name] = text
    return out


def load_criteria(path: str | Path | None) -> dict[str, str]:
    """Read a ``--criteria`` JSON file (``{agent: description}``); ``{}`` when no path is given.

    Raises:
        ValueError: when the file is not a JSON object of strings.
    """
    if not path:
        return {}
    data = json.loads(Path(path).read_text())
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ValueError(f"{path}: criteria must be a JSON object mapping agent name -> description text")
    return {str(k): v for k, v in data.items()}


def classifier_prompt(task_text: str, criteria: Mapping[str, str], instructions: str = INSTRUCTIONS) -> str:
    """The classifier's one prompt: the ``Choice`` question (instructions, criteria) about the task (the state)."""
    return (
        f"{instructions}\n\n"
        "Select exactly one label from the criteria below (each label maps to a description of the "
        "tasks suited to it).\n\n"
        f"Criteria (JSON, label -> description):\n{json.dumps(dict(criteria), indent=1)}\n\n"
        f"Input:\n<<<\n{task_text}\n>>>\n\n"
        'Answer with JSON only, in this shape: {"choice": "<label>"}'
    )


def parse_choice(answer: str, labels: Sequence[str]) -> tuple[str | None, str]:
    """The label a classifier answer names, or ``None`` with the reason.

    Accepted, in order: a JSON object with a ``choice`` string (also inside a code fence or
    surrounded by text); the whole answer equal to a label (case, quotes and trailing dot
    ignored); exactly one label named as a word in the text. Anything else is ``None``.

    Args:
        answer: the classifier's visible answer.
        labels: the pool's agent names.

    Returns:
        ``(label, "ok")`` or ``(None, reason)``.
    """
    text = (answer or "").strip()
    if not text:
        return None, "empty answer"
    by_lower = {lab.lower(): lab for lab in labels}
    match = re.search(r"\{.*\}", text, re.DOTALL)
    if match:
        try:
            obj = json.loads(match.group(0))
        except json.JSONDecodeError:
            obj = None
        if isinstance(obj, dict) and isinstance(obj.get("choice"), str):
            got = obj["choice"].strip()
            if got.lower() in by_lower:
                return by_lower[got.lower()], "ok"
            return None, f"JSON choice {got!r} is not a pool agent"
    bare = text.strip("`'\" \n.").lower()
    if bare in by_lower:
        return by_lower[bare], "ok"
    named = [lab for lab in labels if re.search(rf"(?<![\w-]){re.escape(lab)}(?![\w-])", text, re.IGNORECASE)]
    if len(named) == 1:
        return named[0], "ok"
    if named:
        return None, f"answer names several pool agents: {named}"
    return None, f"answer names no pool agent: {text[:120]!r}"


def run_classifier(services: Any, ctx: Any, agent: Any, task_text: str, criteria: Mapping[str, str],
                   max_tokens: int | None = None) -> dict[str, Any]:
    """Make the ONE classifier call for a task and return its record (never raises on a bad answer).

    Args:
        services: the recording's :class:`~sale_graph.services.SaleServices` (its ``model_factory``).
        ctx: the recording's :class:`~sale_graph.context.SaleContext` (the jury's token cap by default).
        agent: the classifier agent (:class:`~sale_graph.pool.AgentSpec`).
        task_text: the task, the classifier's state.
        criteria: ``{agent name: criterion}`` (:func:`agent_criteria`), the choice's labels.
        max_tokens: generation cap (default: the agent's jury cap).

    Returns:
        ``{agent, question, instructions, criteria, raw, choice, reason, status, input_tokens, output_tokens,
        cost_usd, seconds}``; a failed call has ``status: "error"``, ``choice: None`` and the error as reason.
    """
    out: dict[str, Any] = {"agent": agent.name, "question": QUESTION_ID, "instructions": INSTRUCTIONS,
                           "criteria": dict(criteria), "raw": "", "choice": None, "status": "ok",
                           "input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0, "seconds": 0.0}
    cap = max_tokens if max_tokens is not None else ctx.cap("jury", agent)
    try:
        model = services.model_factory(agent, phase="jury", max_tokens=cap, logprobs=False)
        result = call_model(model, [HumanMessage(classifier_prompt(task_text, criteria))], agent=agent, phase="jury")
    except Exception as exc:  # a failed call is recorded, visibly, as no choice
        out.update(status="error", reason=f"classifier call failed: {type(exc).__name__}: {exc}"[:300])
        return out
    choice, reason = parse_choice(result.text, list(criteria))
    out.update(raw=result.text, choice=choice, reason=reason, input_tokens=int(result.input_tokens),
               output_tokens=int(result.output_tokens), seconds=round(result.seconds, 4),
               cost_usd=float(agent.call_cost(result.input_tokens, result.output_tokens)))
    if not result.usage_reported:
        out["estimated"] = True
    return out

"""How a judge is asked for its score: a JSON schema where the endpoint can constrain it, text elsewhere.

Constrained decoding removes the commonest jury failure (a score outside 0-5 or
no score at all), but the request shape differs by server:

* OpenAI and vLLM take ``response_format={"type": "json_schema", "json_schema": {...}}``
  (vLLM also ``guided_json``);
* llama-cpp-python's server rejects that with HTTP 500 (its ``response_format`` type
  allows only ``text`` or ``json_object``) and takes ``{"type": "json_object", "schema": {...}}``;
* other endpoints may support neither: the judge then answers ``SCORE: n`` in text,
  read by :func:`sale_graph.judge_answers.parse_judge_answer` with its nonce protection.

An agent's pool entry sets ``structured_output`` to one of these, or ``auto`` (the
default): the first jury call tries ``json_schema``, falls back to ``json_object``
and then text when the endpoint refuses the request shape, and remembers the
answer for that endpoint and model for the rest of the process. Every vote records
the format it was asked in (``answer_format``).
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any, Literal

from sale_graph.judge_answers import ParsedScore
from sale_graph.pool import AgentSpec
from sale_graph.llm.retries import is_request_shape_rejection
from sale_graph.scoring import LIKERT_MAX

AnswerFormat = Literal["json_schema", "json_object", "text"]
FALLBACK: dict[str, AnswerFormat] = {"json_schema": "json_object", "json_object": "text"}

SCORE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"score": {"type": "integer", "enum": [0, 1, 2, 3, 4, 5]}},
    "required": ["score"],
    "additionalProperties": False,
}

_detected: dict[tuple[str, str], AnswerFormat] = {}
_lock = threading.Lock()


def answer_format(agent: AgentSpec) -> AnswerFormat:
    """The format to ask ``agent`` in: its pool setting, or what was detected for its endpoint (``auto``)."""
    mode = agent.structured_output
    if mode == "none":
        return "text"
    if mode != "auto":
        return mode
    with _lock:
        return _detected.get((agent.base_url, agent.model), "json_schema")


def remember_format(agent: AgentSpec, fmt: AnswerFormat) -> None:
    """Record the format that ``agent``'s endpoint accepted (only for ``structured_output = "auto"``)."""
    if agent.structured_output == "auto":
        with _lock:
            _detected[(agent.base_url, agent.model)] = fmt


def forget_detected() -> None:
    """Drop every detected format (tests; a server that was swapped for another)."""
    with _lock:
        _detected.clear()


def response_format(fmt: AnswerFormat, schema: dict[str, Any] | None = None, name: str = "jury_score") -> dict[str, Any] | None:
    """The ``response_format`` request field for ``fmt`` (``None`` for text answers)."""
    schema = schema or SCORE_SCHEMA
    if fmt == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}
    if fmt == "json_object":
        return {"type": "json_object", "schema": schema}
    return None


def is_format_rejection(exc: BaseException) -> bool:
    """Whether a failed call was the endpoint refusing the ``response_format`` shape (so another may work)."""
    return is_request_shape_rejection(exc)


def parse_json_score(answer: str) -> ParsedScore:
    """A judge's JSON answer ``{"score": n}`` as a Likert score; anything else is missing, with the reason."""
    text = answer.strip()
    if text.startswith("```"):
        text = text.strip("`").removeprefix("json").strip()
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return ParsedScore(None, "the JSON answer does not parse")
    value = data.get("score") if isinstance(data, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return ParsedScore(None, "the JSON answer has no numeric score")
    if not 0 <= value <= LIKERT_MAX:
        return ParsedScore(None, f"score {value:g} is outside 0-5")
    return ParsedScore(float(value), "ok")


def batch_schema(labels: list[str]) -> dict[str, Any]:
    """The JSON schema of a batched jury answer: one integer score 0-5 per plan label."""
    score = SCORE_SCHEMA["properties"]["score"]
    return {"type": "object", "properties": dict.fromkeys(labels, score), "required": list(labels), "additionalProperties": False}


_LABEL_LINE = re.compile(r"^\W*(?:plan\s+)?([A-Z])\s*[:=\-]\s*\**\s*(-?\d+(?:\.\d+)?)", re.IGNORECASE | re.MULTILINE)


def parse_batch_scores(answer: str, labels: list[str], fmt: AnswerFormat) -> dict[str, ParsedScore]:
    """Each label's score from a batched judge answer (JSON or ``LABEL: n`` lines); missing ones with the reason."""
    found: dict[str, list[float]] = {}
    data: Any = None
    if fmt != "text":
        try:
            data = json.loads(answer.strip().strip("`").removeprefix("json").strip())
        except json.JSONDecodeError:
            data = None
    if isinstance(data, dict):
        for label in labels:
            value = data.get(label)
            if isinstance(value, int | float) and not isinstance(value, bool):
                found[label] = [float(value)]
    else:
        for match in _LABEL_LINE.finditer(answer):
            label = match.group(1).upper()
            if label in labels:
                found.setdefault(label, []).append(float(match.group(2)))
    out: dict[str, ParsedScore] = {}
    for label in labels:
        values = sorted(set(found.get(label, [])))
        if not values:
            out[label] = ParsedScore(None, f"no score for plan {label} in the answer")
        elif len(values) > 1:
            out[label] = ParsedScore(None, f"conflicting scores {values} for plan {label}")
        elif not 0 <= values[0] <= LIKERT_MAX:
            out[label] = ParsedScore(None, f"score {values[0]:g} for plan {label} is outside 0-5")
        else:
            out[label] = ParsedScore(values[0], "ok")
    return out

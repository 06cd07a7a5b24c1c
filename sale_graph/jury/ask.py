"""Asking a judge for its score: a JSON schema where the endpoint can constrain it, text elsewhere.

Constrained decoding removes the commonest jury failure (a score outside 0-5 or
no score at all), but the request shape differs by server:

* OpenAI and vLLM take ``response_format={"type": "json_schema", "json_schema": {...}}``
  (vLLM also ``guided_json``);
* llama-cpp-python's server rejects that with HTTP 500 (its ``response_format`` type
  allows only ``text`` or ``json_object``) and takes ``{"type": "json_object", "schema": {...}}``;
* other endpoints may support neither: the judge then answers ``SCORE: n`` in text,
  read by :func:`sale_graph.jury.read.parse_judge_answer` with its nonce protection.

An agent's pool entry sets ``structured_output`` to one of these, or ``auto`` (the
default): the first jury call tries ``json_schema``, falls back to ``json_object``
and then text when the endpoint refuses the request shape, and remembers the
answer for that endpoint and model for the rest of the process. Every vote records
the format it was asked in (``answer_format``).
"""

from __future__ import annotations

import threading
from typing import Any, Literal

from sale_graph.llm.retries import is_request_shape_rejection
from sale_graph.pool import AgentSpec

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


def batch_schema(labels: list[str]) -> dict[str, Any]:
    """The JSON schema of a batched jury answer: one integer score 0-5 per plan label."""
    score = SCORE_SCHEMA["properties"]["score"]
    return {"type": "object", "properties": dict.fromkeys(labels, score), "required": list(labels), "additionalProperties": False}

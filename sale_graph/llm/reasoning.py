"""What a reasoning model *said* versus what it *thought*: visible text, reasoning, and their tokens.

Serving stacks hand back a thinking model's reasoning in three ways:

* **inline** in the content, ``<think> ... </think>`` before the answer (Qwen3 and
  DeepSeek-R1 through a server without a reasoning parser; llama.cpp without
  ``--reasoning-format``). A generation cut by its token cap may end inside an
  *unclosed* ``<think>`` block: then nothing visible was said;
* **separated** into ``reasoning_content`` / ``reasoning`` (vLLM's reasoning parsers,
  llama.cpp's ``--reasoning-format deepseek``), which :class:`~sale_graph.llm.chat_openai.SaleChatOpenAI`
  keeps in ``additional_kwargs["reasoning_content"]``;
* **hidden**: only counted, in ``usage.completion_tokens_details.reasoning_tokens``
  (OpenAI's reasoning models).

A bid is the visible strategy: reasoning never reaches judges, memory or the
executor, and never counts in ``|s|``. :func:`split_output` returns the visible
text and its token count, exact where the endpoint allows it (reported reasoning
tokens, or log-probs of each generated token to locate where the visible part
starts), otherwise estimated from the characters' share and marked so. The ledger
still bills every generated token (``usage.completion_tokens``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from langchain_core.messages import AIMessage

from sale_graph.llm.chat_openai import REASONING_KEY

TokenSource = Literal["usage", "logprobs", "estimate"]

_CLOSED = re.compile(r"<think>(.*?)</think>", re.DOTALL | re.IGNORECASE)
_OPEN = re.compile(r"<think>(.*)\Z", re.DOTALL | re.IGNORECASE)
_STRAY_CLOSE = re.compile(r"^(.*?)</think>", re.DOTALL | re.IGNORECASE)


def strip_think(text: str) -> tuple[str, str]:
    """Split ``text`` into (visible, inline reasoning).

    Removes closed ``<think>...</think>`` blocks, an unclosed ``<think>`` that runs
    to the end (a generation cut by its cap), and a leading ``...</think>`` whose
    opening tag the chat template already put in the prompt (Qwen3 templates do).
    """
    thoughts: list[str] = []

    def keep(match: re.Match[str]) -> str:
        thoughts.append(match.group(1).strip())
        return ""

    visible = _CLOSED.sub(keep, text)
    visible = _OPEN.sub(keep, visible)
    stray = _STRAY_CLOSE.match(visible)
    if stray and "<think>" not in stray.group(1).lower():
        thoughts.insert(0, stray.group(1).strip())
        visible = visible[stray.end():]
    return visible.strip(), "\n".join(t for t in thoughts if t)


@dataclass(frozen=True)
class VisibleOutput:
    """The visible part of one generation and how its length in tokens is known.

    Attributes:
        text: the visible answer, reasoning removed.
        reasoning: the reasoning text (inline and separated), "" when none was returned.
        visible_tokens: tokens of ``text``: the ``|s|`` of a bid.
        reasoning_tokens: generated tokens spent on reasoning (billed, never in ``|s|``).
        token_source: ``usage`` (the endpoint reported reasoning tokens), ``logprobs``
            (counted from per-token log-probs) or ``estimate`` (characters' share).
        top_logprobs: per visible token, its top log-probs (for the bid entropy); ``None`` when absent.
    """

    text: str
    reasoning: str
    visible_tokens: int
    reasoning_tokens: int
    token_source: TokenSource
    top_logprobs: list[list[float]] | None

    @property
    def exact(self) -> bool:
        """Whether ``visible_tokens`` is a count rather than an estimate."""
        return self.token_source != "estimate"


def _logprob_entries(message: AIMessage) -> list[dict[str, Any]] | None:
    lp = (message.response_metadata or {}).get("logprobs")
    content = lp.get("content") if isinstance(lp, dict) else None
    return list(content) if content else None


def _tops(entries: list[dict[str, Any]]) -> list[list[float]]:
    out: list[list[float]] = []
    for tok in entries:
        values = [float(t["logprob"]) for t in (tok.get("top_logprobs") or []) if t.get("logprob") is not None]
        if not values and tok.get("logprob") is not None:
            values = [float(tok["logprob"])]
        out.append(values)
    return out


def _visible_start(entries: list[dict[str, Any]]) -> int | None:
    """Index of the first token after the last ``</think>`` (skipping whitespace tokens), or None."""
    text = ""
    ends: list[int] = []
    for tok in entries:
        text += str(tok.get("token", ""))
        ends.append(len(text))
    cut = text.lower().rfind("</think>")
    if cut < 0:
        return None
    cut += len("</think>")
    start = next((i for i, end in enumerate(ends) if end > cut), len(entries))
    while start < len(entries) and not str(entries[start].get("token", "")).strip():
        start += 1
    return start


def _reported_reasoning(message: AIMessage) -> int | None:
    usage = message.usage_metadata
    details: Mapping[str, Any] = (usage.get("output_token_details") if usage else None) or {}
    value = details.get("reasoning")
    return int(value) if isinstance(value, int) and value >= 0 else None


def split_output(message: AIMessage, text: str, output_tokens: int) -> VisibleOutput:
    """Separate the visible text of ``message`` from its reasoning and count each in tokens.

    ``text`` is the message's plain text and ``output_tokens`` every generated token
    the endpoint billed (reasoning included).
    """
    visible, inline = strip_think(text)
    separated = str((message.additional_kwargs or {}).get(REASONING_KEY) or "").strip()
    reasoning = "\n".join(t for t in (separated, inline) if t)
    entries = _logprob_entries(message)
    reported = _reported_reasoning(message)

    if not reasoning and not reported:
        tops = _tops(entries) if entries else None
        return VisibleOutput(visible, "", output_tokens, 0, "usage", tops)
    start = _visible_start(entries) if entries else None
    if entries and start is not None:
        # Log-probs of every generated token, thinking included (vLLM builds them before its
        # reasoning parser splits the text): the visible part starts after the last </think>.
        tops = _tops(entries[start:])
        return VisibleOutput(visible, reasoning, len(tops), max(0, output_tokens - len(tops)), "logprobs", tops or None)
    if reported is not None and reported <= output_tokens and not inline:
        n_visible = output_tokens - reported
        tops = _tops(entries[-n_visible:]) if entries and n_visible else None
        return VisibleOutput(visible, reasoning, n_visible, reported, "usage", tops)
    if entries and separated and not inline:
        # No </think> among the log-prob tokens: they cover the visible content only.
        tops = _tops(entries)
        return VisibleOutput(visible, reasoning, len(tops), max(0, output_tokens - len(tops)), "logprobs", tops)
    total_chars = len(visible) + len(reasoning)
    n_visible = round(output_tokens * len(visible) / total_chars) if total_chars else 0
    if visible and n_visible == 0:
        n_visible = 1
    return VisibleOutput(visible, reasoning, n_visible, max(0, output_tokens - n_visible), "estimate", None)

"""Whether an execution solved its task: unit tests for coding tasks, gold answers for search.

:func:`assess` grades one execution: a coding task's ``tests`` run against the code
in the final message in the sandbox; a search task's ``gold`` answers are compared
with the final answer; a task with neither is ``unknown``.

The gold-answer metrics follow the SQuAD / HotpotQA convention so that numbers are
comparable with the literature: answers are normalised (lower case, no
punctuation, no English articles, single spaces) and compared by exact match
and by token-level F1, taking the best score over every accepted alias of the
gold answer. A task counts as *passed* (for pass@1 and for the SALE memory's
outcome labels) when the normalised answer matches exactly or its F1 reaches a
threshold; the threshold is explicit in every :class:`Grade` call so reports can
state it.

:func:`extract_final_answer` pulls the short answer out of a ReAct agent's
final message, which usually carries reasoning around the answer itself.
"""

from __future__ import annotations

import ast
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sale_graph.llm.reasoning import strip_think
from sale_graph.state import Outcome

__all__ = [
    "DEFAULT_F1_THRESHOLD",
    "NO_CODE",
    "Grade",
    "GradedBy",
    "Outcome",
    "assess",
    "normalize_answer",
    "exact_match",
    "token_f1",
    "grade_answer",
    "extract_final_answer",
]

"""Whether an execution solved its task (``unknown``: the task gives nothing to check it against)."""

#: F1 at or above which a non-exact answer still passes. 0.6 accepts an answer
#: carrying one extra word around a two-word gold ("the Eiffel Tower in Paris"
#: vs "Eiffel Tower" scores 0.67) and rejects answers that share only one word
#: of three ("New York City" vs "York" scores 0.5).
DEFAULT_F1_THRESHOLD = 0.6

_ARTICLES = re.compile(r"\b(a|an|the)\b")


def _is_punct(ch: str) -> bool:
    """True for ASCII punctuation and any Unicode punctuation (curly quotes, dashes, ellipsis)."""
    return ch in string.punctuation or unicodedata.category(ch).startswith("P")


def normalize_answer(s: str) -> str:
    """Normalise an answer for comparison: lower case, no punctuation, no articles, single spaces.

    This is the SQuAD/HotpotQA normalisation (in that order), so "The Beatles."
    and "beatles" compare equal. As there, punctuation is deleted, not replaced
    by a space: "1,000" becomes "1000" and "don't" becomes "dont". Unicode
    punctuation (curly quotes, dashes) is deleted too, since LLMs emit it often.
    """
    if not isinstance(s, str):
        raise TypeError(f"normalize_answer expects a str, got {type(s).__name__}: {s!r}")
    text = s.lower()
    text = "".join(ch for ch in text if not _is_punct(ch))
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _as_golds(golds: str | Sequence[str]) -> list[str]:
    """Return the gold aliases as a non-empty list, rejecting bad input with a clear message."""
    if isinstance(golds, str):
        aliases = [golds]
    elif isinstance(golds, Sequence):
        aliases = list(golds)
    else:
        raise TypeError(f"golds must be a string or a list of strings, got {type(golds).__name__}: {golds!r}")
    if not aliases:
        raise ValueError("golds is empty: give at least one accepted answer")
    for alias in aliases:
        if not isinstance(alias, str):
            raise TypeError(f"every gold alias must be a str, got {type(alias).__name__}: {alias!r}")
    return aliases


def _f1(pred_tokens: list[str], gold_tokens: list[str]) -> float:
    """Token-level F1 between two normalised token lists (SQuAD convention for empty answers)."""
    if not pred_tokens or not gold_tokens:
        return float(pred_tokens == gold_tokens)
    common = Counter(pred_tokens) & Counter(gold_tokens)
    overlap = sum(common.values())
    if overlap == 0:
        return 0.0
    precision = overlap / len(pred_tokens)
    recall = overlap / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def exact_match(pred: str, golds: str | Sequence[str]) -> bool:
    """True when the normalised prediction equals the normalised form of any gold alias."""
    aliases = _as_golds(golds)
    p = normalize_answer(pred)
    return any(p == normalize_answer(g) for g in aliases)


def token_f1(pred: str, golds: str | Sequence[str]) -> float:
    """Best token-level F1 of the prediction over all gold aliases (0.0 to 1.0)."""
    aliases = _as_golds(golds)
    p = normalize_answer(pred).split()
    return max(_f1(p, normalize_answer(g).split()) for g in aliases)


@dataclass(frozen=True)
class Grade:
    """The grade of one answer: exact match, best F1, pass/fail and the alias that matched best."""

    em: bool
    f1: float
    passed: bool
    best_gold: str


def grade_answer(
    pred: str, golds: str | Sequence[str], f1_threshold: float = DEFAULT_F1_THRESHOLD
) -> Grade:
    """Grade a predicted answer: passed when it matches a gold alias exactly or reaches ``f1_threshold``.

    ``best_gold`` is the alias with the highest F1 (an exact match wins ties),
    so a report can show what the answer was compared with.
    """
    if not 0.0 <= f1_threshold <= 1.0:
        raise ValueError(f"f1_threshold must be within [0, 1], got {f1_threshold!r}")
    if not isinstance(pred, str):
        raise TypeError(f"pred must be a str, got {type(pred).__name__}: {pred!r}")
    aliases = _as_golds(golds)
    p_norm = normalize_answer(pred)
    p_tokens = p_norm.split()
    best: tuple[bool, float, str] | None = None
    for alias in aliases:
        g_norm = normalize_answer(alias)
        em = p_norm == g_norm
        f1 = _f1(p_tokens, g_norm.split())
        key = (em, f1, alias)
        if best is None or (key[1], key[0]) > (best[1], best[0]):
            best = key
    assert best is not None  # aliases is non-empty
    any_em = any(p_norm == normalize_answer(g) for g in aliases)
    f1 = best[1]
    return Grade(em=any_em, f1=f1, passed=any_em or f1 >= f1_threshold, best_gold=best[2])


_MARKERS = re.compile(
    r"(?:^|\n|\s)[*_#>\s]*(final\s+answer|answer)[*_\s]*[:\uff1a][*_\s]*", re.IGNORECASE
)
_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")


def _clean(answer: str) -> str:
    """Strip markdown emphasis, surrounding quotes and a trailing period from an extracted answer.

    Repeated until nothing changes, so the order they are nested in does not matter
    (``*Canberra*.`` and ``"Canberra."`` both give ``Canberra``).
    """
    a = answer.strip()
    while True:
        before = a
        a = re.sub(r"^[*_`\s]+|[*_`\s]+$", "", a)
        if len(a) >= 2 and a[0] == a[-1] and a[0] in "\"'":
            a = a[1:-1].strip()
        if len(a) >= 2 and a[0] in "\u201c\u2018" and a[-1] in "\u201d\u2019":
            a = a[1:-1].strip()
        while a.endswith(".") and not a.endswith(".."):
            a = a[:-1].rstrip()
        if a == before:
            return a


_FENCE = re.compile(r"```[\w+.-]*[ \t]*\n.*?```", re.DOTALL)


def _answer_after(rest: str) -> str:
    """The answer that follows a marker: a whole fenced code block, else its first non-empty line."""
    stripped = rest.lstrip()
    if stripped.startswith("```"):
        block = _FENCE.match(stripped)
        return (block.group(0) if block else stripped).strip()
    for line in rest.splitlines():
        if line.strip():
            return _clean(line)
    return ""


def extract_final_answer(text: str) -> str:
    r"""Return the answer from a ReAct agent's final message: one extractor for live runs and the bench.

    Reasoning is removed first (``<think>`` blocks, closed or cut off, see
    :func:`sale_graph.llm.reasoning.strip_think`). Then, in order: the text after the
    last "Final Answer:" marker, after the last "Answer:" marker, a LaTeX
    ``\boxed{...}``, a closing fenced code block, and otherwise the last non-empty
    line. After a marker the answer is its first non-empty line (trailing
    explanation dropped), or the whole fenced code block when one follows it;
    markdown emphasis, quotes and a trailing period are stripped from a one-line
    answer. Returns "" for an empty message.
    """
    if not isinstance(text, str):
        raise TypeError(f"extract_final_answer expects the message text as a str, got {type(text).__name__}")
    body, _ = strip_think(text)
    matches = list(_MARKERS.finditer(body))
    final = [m for m in matches if m.group(1).lower().startswith("final")]
    chosen = final[-1] if final else (matches[-1] if matches else None)
    if chosen is not None:
        return _answer_after(body[chosen.end():])
    boxed = _BOXED.findall(body)
    if boxed:
        return _clean(boxed[-1])
    if body.rstrip().endswith("```"):
        blocks = _FENCE.findall(body)
        if blocks:
            return str(blocks[-1]).strip()
    lines = [line for line in body.splitlines() if line.strip()]
    return _clean(lines[-1]) if lines else ""


#: What an outcome rests on: the task's tests ran in the sandbox, the gold answers, or nothing was checked.
GradedBy = Literal["tests", "gold", "none"]

NO_CODE = "no code in the final message: the tests did not run"


def assess(task: Mapping[str, Any], final_text: str, answer: str) -> tuple[Outcome, str, GradedBy]:
    """Grade one execution: the outcome, why, and what it rests on.

    * ``tests`` in the task: the code in the final message (last ```python block) runs
      against them in the sandbox (``"tests"``); failed carries the failing test's message.
      A final message with no code (empty, or prose with no code block that is not Python
      either) is failed, ``"none"``: the tests did not run (:data:`NO_CODE`).
    * ``gold`` in the task: normalised exact match / token F1 against the aliases (``"gold"``).
    * neither: ``unknown`` (``"none"``).
    """
    tests = task.get("tests")
    if tests:
        from sale_graph.tools.code import check_solution, extract_code

        code = extract_code(final_text)
        if not _is_code(final_text, code):
            return "failed", NO_CODE, "none"
        check = check_solution(code, tests, task.get("entry_point"))
        return ("passed" if check.passed else "failed"), check.message, "tests"
    gold = task.get("gold")
    if gold:
        grade = grade_answer(answer, gold)
        return ("passed" if grade.passed else "failed"), f"EM={int(grade.em)} F1={grade.f1:.2f} vs {grade.best_gold!r}", "gold"
    return "unknown", "no tests or gold answer given", "none"


def _is_code(final_text: str, code: str) -> bool:
    """Whether the final message holds code to test: a fenced block (even a broken one), or text that parses as Python."""
    if not code.strip():
        return False
    if "```" in final_text:
        return True
    try:
        ast.parse(code)
    except SyntaxError:
        return False
    return True

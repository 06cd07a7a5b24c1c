"""Whether an execution solved its task: unit tests for coding tasks, gold answers for search."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

Outcome = Literal["passed", "failed", "unknown"]


def assess(task: Mapping[str, Any], final_text: str, answer: str) -> tuple[Outcome, str]:
    """Grade one execution.

    * ``tests`` in the task: the code in the final message (last ```python block) runs
      against them in the sandbox; failed carries the failing test's message.
    * ``gold`` in the task: normalised exact match / token F1 against the aliases.
    * neither: ``unknown``.
    """
    tests = task.get("tests")
    if tests:
        from sale_graph.tools.code import check_solution, extract_code

        check = check_solution(extract_code(final_text), tests, task.get("entry_point"))
        return ("passed" if check.passed else "failed"), check.message
    gold = task.get("gold")
    if gold:
        from sale_graph.grading import grade_answer

        grade = grade_answer(answer, gold)
        return ("passed" if grade.passed else "failed"), f"EM={int(grade.em)} F1={grade.f1:.2f} vs {grade.best_gold!r}"
    return "unknown", "no tests or gold answer given"

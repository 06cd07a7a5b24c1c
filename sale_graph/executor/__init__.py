"""How the auction's winner executes the task, and whether it solved it.

- :mod:`~sale_graph.executor.react`: the winner's ReAct agent with its tools, streamed
  step by step into a :class:`Trace` within a step, token and time budget, and the
  state's ``execution`` record made from it.
- :mod:`~sale_graph.executor.grading`: the outcome of an execution (unit tests for
  coding tasks, exact match / token F1 against gold answers for search) and the
  final-answer extractor the benchmark uses too.

The ``execute`` node (:mod:`sale_graph.nodes.execute`) wires them; the model calls go
through :mod:`sale_graph.llm` (:class:`~sale_graph.llm.endpoint_policy.EndpointPolicy`).
"""

from sale_graph.executor.grading import Outcome, assess, extract_final_answer, grade_answer
from sale_graph.executor.react import (
    Trace,
    arun_react,
    budget_used_up,
    execution_notes,
    execution_record,
    fallback_note,
    opening_messages,
    react_agent,
    retries_note,
    run_react,
    stop_note,
    tool_names,
)

__all__ = [
    "Outcome",
    "Trace",
    "arun_react",
    "assess",
    "budget_used_up",
    "execution_notes",
    "execution_record",
    "extract_final_answer",
    "fallback_note",
    "grade_answer",
    "opening_messages",
    "react_agent",
    "retries_note",
    "run_react",
    "stop_note",
    "tool_names",
]

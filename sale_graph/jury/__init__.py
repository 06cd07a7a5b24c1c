"""The jury's two sides of one call: asking a judge for its score, and reading the answer.

- :mod:`~sale_graph.jury.ask`: the answer format an endpoint is asked in (a JSON
  schema where it can constrain the answer, text elsewhere), detected once per
  endpoint, and the request field for it.
- :mod:`~sale_graph.jury.read`: the judge's own score from its answer (text, JSON or
  one score per plan of a batched call), or why it is missing.

The ``jury`` and ``jury_batch`` nodes (:mod:`sale_graph.nodes.jury`,
:mod:`sale_graph.nodes.jury_batch`) make the calls; :mod:`sale_graph.prompts` writes them.
"""

from sale_graph.jury.ask import (
    FALLBACK,
    SCORE_SCHEMA,
    AnswerFormat,
    answer_format,
    batch_schema,
    forget_detected,
    is_format_rejection,
    remember_format,
    response_format,
)
from sale_graph.jury.read import ParsedScore, parse_batch_scores, parse_json_score, parse_judge_answer, strip_quoted_bid

__all__ = [
    "FALLBACK",
    "SCORE_SCHEMA",
    "AnswerFormat",
    "ParsedScore",
    "answer_format",
    "batch_schema",
    "forget_detected",
    "is_format_rejection",
    "parse_batch_scores",
    "parse_json_score",
    "parse_judge_answer",
    "remember_format",
    "response_format",
    "strip_quoted_bid",
]

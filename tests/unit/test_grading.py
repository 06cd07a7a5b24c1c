"""Answer grading: SQuAD/HotpotQA normalisation, EM, token F1, pass rule and final-answer extraction."""

from __future__ import annotations

import pytest

from sale_graph.executor.grading import (
    DEFAULT_F1_THRESHOLD,
    Grade,
    exact_match,
    extract_final_answer,
    grade_answer,
    normalize_answer,
    token_f1,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("The Beatles.", "beatles"),
        ("  An   apple a day ", "apple day"),
        ("U.S.A.", "usa"),
        ("1,000", "1000"),
        ("“Paris”", "paris"),
        ("Rock–and–roll", "rockandroll"),  # en dashes are punctuation, deleted like ASCII '-'
        ("Theatre", "theatre"),  # an article inside a word is kept
        ("", ""),
    ],
)
def test_normalize_answer(raw: str, expected: str) -> None:
    assert normalize_answer(raw) == expected


def test_exact_match_uses_normalisation_and_any_alias() -> None:
    assert exact_match("the Beatles!", "Beatles")
    assert exact_match("JFK", ["John F. Kennedy", "JFK"])
    assert not exact_match("Beatle", "The Beatles")


def test_token_f1_values() -> None:
    # pred tokens [eiffel, tower, in, paris] vs gold [eiffel, tower]: P=0.5, R=1 -> F1=2/3
    assert token_f1("the Eiffel Tower in Paris", "Eiffel Tower") == pytest.approx(2 / 3)
    assert token_f1("Paris", "Paris") == 1.0
    assert token_f1("London", "Paris") == 0.0
    # best over aliases
    assert token_f1("Barack Obama", ["Obama", "Barack Hussein Obama"]) == pytest.approx(0.8)
    # repeated tokens only count as often as in the gold
    assert token_f1("paris paris", "paris") == pytest.approx(2 * 0.5 * 1 / 1.5)


def test_token_f1_empty_answers_follow_squad() -> None:
    assert token_f1("", "Paris") == 0.0
    assert token_f1("the", "a") == 1.0  # both normalise to empty


def test_grade_answer_pass_rule_and_best_gold() -> None:
    g = grade_answer("The Eiffel Tower in Paris", ["Statue of Liberty", "Eiffel Tower"])
    assert isinstance(g, Grade)
    assert not g.em
    assert g.f1 == pytest.approx(2 / 3)
    assert g.passed  # 0.67 >= default threshold 0.6
    assert g.best_gold == "Eiffel Tower"

    strict = grade_answer("The Eiffel Tower in Paris", "Eiffel Tower", f1_threshold=0.9)
    assert not strict.passed

    g = grade_answer("New York City", "York")
    assert g.f1 == pytest.approx(0.5) and not g.passed

    exact = grade_answer("the beatles", ["Beatles", "The Fab Four"])
    assert exact.em and exact.passed and exact.f1 == 1.0 and exact.best_gold == "Beatles"

    wrong = grade_answer("Rolling Stones", "Beatles")
    assert not wrong.em and wrong.f1 == 0.0 and not wrong.passed
    assert DEFAULT_F1_THRESHOLD == 0.6


def test_grade_answer_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="golds is empty"):
        grade_answer("x", [])
    with pytest.raises(TypeError, match="gold alias"):
        grade_answer("x", ["ok", 3])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="f1_threshold"):
        grade_answer("x", "x", f1_threshold=1.5)
    with pytest.raises(TypeError, match="pred"):
        grade_answer(None, "x")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("Thought: I found it.\nFinal Answer: Paris.", "Paris"),
        ("I searched twice.\n\n**Final Answer:** Marie Curie", "Marie Curie"),
        ("Answer: 42", "42"),
        ("Answer: not this one\nFinal Answer: this one", "this one"),
        ("Final Answer:\n\n  Mount Everest.\nIt is in Nepal.", "Mount Everest"),
        ("<think>Answer: wrong</think>\nThe capital is Canberra.", "The capital is Canberra"),
        ("Reasoning...\n\nThe answer is \\boxed{1969}.", "1969"),
        ('Final answer: "Nile"', "Nile"),
        ("Some reasoning.\nAmazon River.\n\n", "Amazon River"),
        ("   ", ""),
        ("It costs $3.50", "It costs $3.50"),
    ],
)
def test_extract_final_answer(message: str, expected: str) -> None:
    assert extract_final_answer(message) == expected


def test_extract_then_grade_end_to_end() -> None:
    msg = "Thought: the search says the Nile.\nFinal Answer: The Nile River."
    grade = grade_answer(extract_final_answer(msg), ["Nile", "Nile River"])
    assert grade.em and grade.passed and grade.best_gold == "Nile River"

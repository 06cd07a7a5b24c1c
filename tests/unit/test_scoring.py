"""Each formula of docs/method.md against numbers computed by hand."""

from __future__ import annotations

import math

import pytest

from sale_graph.scoring import (
    jury_gamma,
    logprob_entropy,
    select_winner,
    strategy_cost,
    strategy_value,
    text_entropy,
    token_entropy,
)


def test_cost_is_weight_times_price_times_length() -> None:
    assert strategy_cost(0.01, 0.36, 150) == pytest.approx(0.54)
    assert strategy_cost(0.01, 0.05, 150) == pytest.approx(0.075)
    assert strategy_cost(0.0, 0.36, 150) == 0.0
    with pytest.raises(ValueError):
        strategy_cost(0.01, -1.0, 10)


def test_token_entropy_uniform_and_peaked() -> None:
    # Two alternatives at 1/2 each: H = log 2, normalised by log(2 + 1) (top-2 + an empty rest bucket).
    assert token_entropy([math.log(0.5), math.log(0.5)]) == pytest.approx(math.log(2) / math.log(3))
    # A certain token: H = 0.
    assert token_entropy([0.0]) == 0.0
    # Top-1 of 0.5 with the remaining 0.5 in the rest bucket: H = log 2 / log 2 = 1.
    assert token_entropy([math.log(0.5)]) == pytest.approx(1.0)
    # p = (0.7, 0.2) and rest 0.1: H by hand / log 3.
    h = -(0.7 * math.log(0.7) + 0.2 * math.log(0.2) + 0.1 * math.log(0.1))
    assert token_entropy([math.log(0.7), math.log(0.2)]) == pytest.approx(h / math.log(3))


def test_logprob_entropy_is_mean_over_tokens() -> None:
    tokens = [[0.0], [math.log(0.5)]]
    assert logprob_entropy(tokens) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        logprob_entropy([])


def test_text_entropy_bounds() -> None:
    # Unigram entropy over a fixed scale of log(64): four distinct words give log 4 / log 64 = 1/3.
    assert text_entropy("alpha beta gamma delta") == pytest.approx(math.log(4) / math.log(64))
    assert text_entropy("go go go go") == 0.0
    assert text_entropy("") == 0.0
    # "a a b b": p = (1/2, 1/2), H = log 2, / log 64 = 1/6
    assert text_entropy("a a b b") == pytest.approx(1 / 6)
    many = " ".join(f"w{i}" for i in range(200))
    assert text_entropy(many) == 1.0  # capped


GOOD_PLAN = (
    "1. Search the offline corpus for the river's name and its source country. "
    "2. Open the two best pages and compare their stated lengths in kilometres. "
    "3. If they disagree, prefer the encyclopedia summary and note the other figure. "
    "4. Answer with the name only, and check the spelling against the page title."
)


@pytest.mark.parametrize("degenerate", ["I don't know.", "Search.", "search search search search search", "", "1. answer"])
def test_text_entropy_ranks_a_real_plan_above_degenerate_bids(degenerate: str) -> None:
    assert text_entropy(GOOD_PLAN) > 0.8
    assert text_entropy(degenerate) < 0.4 < text_entropy(GOOD_PLAN)


def test_common_entropy_scale_policies() -> None:
    from sale_graph.scoring import common_entropy_scale

    all_lp = common_entropy_scale({"a": 0.6, "b": 0.4}, {"a": 0.9, "b": 0.8})
    assert all_lp.values == {"a": 0.6, "b": 0.4} and all_lp.policy == "logprobs"
    none = common_entropy_scale({"a": None, "b": None}, {"a": 0.9, "b": 0.8})
    assert none.values == {"a": 0.9, "b": 0.8} and none.policy == "text"
    mixed = common_entropy_scale({"a": 0.6, "b": None}, {"a": 0.8, "b": 0.4})
    assert mixed.values["a"] == 0.6  # the log-prob entropy is kept, not thrown away
    assert mixed.values["b"] == pytest.approx(0.4 * 0.6 / 0.8)
    assert mixed.sources == {"a": "logprobs", "b": "text-rescaled"} and mixed.policy.startswith("mixed")


def test_jury_gamma_scale_and_range() -> None:
    assert jury_gamma(4) == pytest.approx(0.8)
    assert jury_gamma(0) == 0.0
    for bad in (-1, 6, float("nan"), 10):
        with pytest.raises(ValueError):
            jury_gamma(bad)


def test_value_formula_by_hand() -> None:
    # V = 0.5 * 0.6 + 0.3 * 0.8 + 0.7 * 0.4 = 0.3 + 0.24 + 0.28
    assert strategy_value(0.6, [0.8, 0.4], 0.5, [0.3, 0.7]) == pytest.approx(0.82)


def test_value_renormalises_over_answering_judges() -> None:
    # Judge 2 missing: judge 1's weight 0.3 is scaled to carry the whole 1.0.
    assert strategy_value(0.6, [0.8, None], 0.5, [0.3, 0.7]) == pytest.approx(0.3 + 0.8)
    assert strategy_value(0.6, [None, float("nan")], 0.5, [0.3, 0.7]) == pytest.approx(0.3)
    with pytest.raises(ValueError):
        strategy_value(0.6, [0.8], 0.5, [0.3, 0.7])


def test_selection_argmin_and_margin() -> None:
    sel = select_winner([0.5, 0.1, 0.3], [1.0, 0.2, 0.9], [0.36, 0.05, 0.16], ["l", "s", "m"])
    # nets: -0.5, -0.1, -0.6 -> "m" wins, runner-up "l", margin 0.1
    assert sel.index == 2 and sel.runner_up == 0
    assert sel.net == pytest.approx(-0.6) and sel.margin == pytest.approx(0.1)


def test_tie_goes_to_cheaper_agent_then_name() -> None:
    sel = select_winner([0.2, 0.2], [0.5, 0.5], [0.36, 0.05], ["large", "small"])
    assert sel.index == 1 and sel.margin == 0.0
    sel = select_winner([0.2, 0.2], [0.5, 0.5], [0.05, 0.05], ["b", "a"])
    assert sel.index == 1
    # Float noise below 1e-12 is a tie, not a win.
    sel = select_winner([0.1 + 0.2, 0.3], [0.0, 0.0], [0.36, 0.05], ["large", "small"])
    assert sel.index == 1


def test_single_bid() -> None:
    sel = select_winner([0.1], [0.3], [0.05], ["only"])
    assert sel.index == 0 and sel.runner_up is None and sel.margin == 0.0

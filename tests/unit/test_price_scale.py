"""Issue 20, finding 2: the default cost weight fits any pool's price scale.

With the old fixed ``w_c = 0.01`` (which assumed the paper's $0.05-$0.36 prices), a
$0.05 vs $10 pool could never pick its dear agent: a 29-token plan judged 5/5 lost to
the cheap agent's "no" judged 0/5. The default now scales ``w_c`` to the pool's own
prices (``sale_graph.weights.pool_cost_weight``): at equal judgement the cheaper agent
wins, and the dear agent wins once the jury rates it clearly (2 points of 5) higher.
"""

from __future__ import annotations

import pytest
from rich.console import Console

from sale_graph import SaleContext, Weights, build_sale_graph
from sale_graph.cli.report import render_report
from sale_graph.weights import COST_SHARE, REFERENCE_BID_TOKENS, pool_cost_weight
from tests.fakes import FakeFactory, pool_of, prompt_text

CHEAP_PRICE = 0.05
# Two bids of the same length (130 words: the fakes count a word as a token) and the same text entropy (all
# words distinct, so H = 1 for both): only the price and the jury tell them apart.
CHEAP_PLAN = " ".join(f"cheapstep{i}" for i in range(REFERENCE_BID_TOKENS))
DEAR_PLAN = " ".join(f"dearstep{i}" for i in range(REFERENCE_BID_TOKENS))


def auction(prices: dict[str, float], plans: dict[str, str], scores: dict[str, int], weights: Weights | None = None) -> dict:
    """One auction on fakes: each agent bids its plan, every judge gives each plan its score."""

    def bid(agent: str, messages) -> str:
        return plans[agent]

    def jury(agent: str, messages) -> str:
        text = prompt_text(messages)
        owner = next(a for a, plan in plans.items() if plan in text)
        return f"SCORE: {scores[owner]}"

    factory = FakeFactory({"bid": bid, "jury": jury, "execute": lambda a, m: "Final Answer: ok"})
    graph = build_sale_graph(model_factory=factory, tools=[]).compile()
    context = SaleContext(pool=pool_of(*prices.items()), weights=weights, check_endpoints=False, use_memory=False)
    return graph.invoke({"task": "Plan a data migration."}, context=context)


@pytest.mark.parametrize("spread", [10, 200])
@pytest.mark.parametrize(("cheap_score", "dear_score", "winner"), [
    (3, 3, "cheap"),  # equal judgement: the cheaper agent wins
    (0, 0, "cheap"),
    (3, 4, "cheap"),  # one point better does not pay for the dear agent's price
    (3, 5, "dear"),  # two points better (clearly) does
    (1, 5, "dear"),
    (0, 5, "dear"),
])
def test_dear_agent_wins_exactly_when_judged_clearly_better(spread: int, cheap_score: int, dear_score: int, winner: str) -> None:
    prices = {"cheap": CHEAP_PRICE, "dear": CHEAP_PRICE * spread}
    out = auction(prices, {"cheap": CHEAP_PLAN, "dear": DEAR_PLAN}, {"cheap": cheap_score, "dear": dear_score})
    rows = {r["agent"]: r for r in out["scores"]}
    assert rows["cheap"]["entropy"] == rows["dear"]["entropy"] and rows["cheap"]["tokens"] == rows["dear"]["tokens"]
    assert out["selection"]["winner"] == winner
    # the dearest agent's reference bid costs COST_SHARE of the value range (1.5 with the default weights)
    assert rows["dear"]["cost"] == pytest.approx(COST_SHARE * 1.5, abs=1e-5)


def test_the_issues_example_a_clear_plan_beats_a_no_at_a_200x_price() -> None:
    plans = {"cheap": "no", "dear": " ".join(f"step{i}" for i in range(29))}
    out = auction({"cheap": 0.05, "dear": 10.0}, plans, {"cheap": 0, "dear": 5})
    assert out["selection"]["winner"] == "dear"
    # the cheap agent would be asked to refine now (memory is off in this test, so it is skipped for that reason)
    assert out["refinement"] == {"status": "skipped", "reason": "auction memory is off (context.use_memory=False)"}
    # an explicit w_c is used as given: the paper-scale 0.01 still lets the "no" win on this pool
    old = auction({"cheap": 0.05, "dear": 10.0}, plans, {"cheap": 0, "dear": 5}, weights=Weights(w_c=0.01))
    assert old["selection"]["winner"] == "cheap"
    assert old["run_context"]["fingerprint"]["w_c"] == 0.01
    assert old["run_context"]["fingerprint"]["cost_rule"].startswith("explicit: w_c = 0.01")


@pytest.mark.parametrize(("cheap_score", "dear_score", "winner"), [(4, 4, "qwen3-4b"), (3, 5, "gpt-4o-mini"), (2, 4, "gpt-4o-mini")])
def test_readme_pool(cheap_score: int, dear_score: int, winner: str) -> None:
    """The README's pool ($0.05 vs $0.60): a two-point jury gap at equal length picks the dear agent (it needed 3.6)."""
    prices = {"qwen3-4b": 0.05, "gpt-4o-mini": 0.60}
    plans = {"qwen3-4b": CHEAP_PLAN, "gpt-4o-mini": DEAR_PLAN}
    out = auction(prices, plans, {"qwen3-4b": cheap_score, "gpt-4o-mini": dear_score})
    assert out["selection"]["winner"] == winner


def test_the_rule_is_recorded_and_shown() -> None:
    out = auction({"cheap": 0.05, "dear": 10.0}, {"cheap": CHEAP_PLAN, "dear": DEAR_PLAN}, {"cheap": 3, "dear": 3})
    fingerprint = out["run_context"]["fingerprint"]
    w_c = COST_SHARE * 1.5 / (10.0 * REFERENCE_BID_TOKENS)
    assert fingerprint["w_c"] == pytest.approx(w_c)
    assert fingerprint["cost_rule"] == pool_cost_weight({"cheap": 0.05, "dear": 10.0}, 1.5)[1]
    assert "dearest agent dear ($10/1M) costs 20% of the value range 1.5" in fingerprint["cost_rule"]
    console = Console(record=True, width=200)
    console.print(render_report(out))
    assert "cost C = w_c x price x tokens; pool-scaled: w_c = " in console.export_text()


def test_pool_cost_weight_edge_cases() -> None:
    assert pool_cost_weight({"a": 0.0, "b": 0.0}, 1.5)[0] == 0.0  # free models: no cost term, and no division by zero
    assert pool_cost_weight({"a": 1.0}, 0.0)[0] == 0.0
    # the scale follows the prices: ten times dearer, a tenth of the weight
    assert pool_cost_weight({"a": 0.5, "b": 3.6}, 1.5)[0] == pytest.approx(pool_cost_weight({"a": 0.05, "b": 0.36}, 1.5)[0] / 10)
    # a weights file without w_c is scaled to the pool with its own value range
    w = Weights(w_h=0.0, jury={"a": 2.0, "b": 2.0}).for_prices({"a": 1.0, "b": 2.0})
    assert w.w_c == pytest.approx(COST_SHARE * 4.0 / (2.0 * REFERENCE_BID_TOKENS)) and w.cost_from_pool
    # scaled weights re-scale to another pool; explicit ones never do
    assert w.for_prices({"a": 1.0, "b": 4.0}).w_c == pytest.approx(w.w_c / 2)
    assert Weights(w_c=0.3).for_prices({"a": 1.0}).w_c == 0.3

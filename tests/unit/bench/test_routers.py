"""Every router on small synthetic market logs: choices, overheads, and agreement with the live rule."""

from __future__ import annotations

import numpy as np
import pytest

from sale_graph.bench.market.market import Market
from sale_graph.bench.report.build import build_report, write_report
from sale_graph.bench.routers.auction import AuctionRouter, CascadeRouter
from sale_graph.bench.routers.base import evaluate
from sale_graph.bench.routers.simple import OracleRouter, RandomRouter, SingleAgentRouter
from sale_graph.bench.routers.standard import SALE_VARIANTS, standard_routers
from sale_graph.bench.routers.text import EmbeddingStore, KNNRouter, MLPRouter
from sale_graph.bench.synthetic.generator import synthetic_records
from sale_graph.nodes.score import build_table
from sale_graph.pool import AgentPool, AgentSpec
from sale_graph.scoring import select_winner
from sale_graph.weights import Weights


@pytest.fixture(scope="module")
def market_and_store() -> tuple[Market, EmbeddingStore]:
    records, vectors = synthetic_records(120, seed=3)
    store = EmbeddingStore()
    store.put([r["task"]["id"] for r in records], [r["task"]["text"] for r in records], vectors)
    return Market.from_records(records), store


def _pool(market: Market) -> AgentPool:
    prices = zip(market.agents, market.price_in, market.price_out, strict=True)
    return AgentPool(tuple(AgentSpec(name=a, model=a, base_url="http://127.0.0.1:1/v1", price_input=float(pi),
                                     price_output=float(po)) for a, pi, po in prices))


def test_single_random_oracle(market_and_store) -> None:
    m, _ = market_and_store
    idx = np.arange(m.n_tasks)
    for k, a in enumerate(m.agents):
        assert (SingleAgentRouter(a).choose(m, idx) == k).all()
    r1, r2 = RandomRouter(7).choose(m, idx), RandomRouter(7).choose(m, idx)
    assert (r1 == r2).all() and len(set(r1.tolist())) == m.n_agents  # deterministic, uses every agent
    oracle = evaluate(OracleRouter(), m, idx)
    # Routers that do not bid run the plain executions (issue 11: baselines get no free plan).
    assert m.has_plain
    passed, cost = m.plain_passed, m.plain_cost
    assert oracle.passed.mean() == pytest.approx(passed.any(axis=1).mean())
    for a in m.agents:  # nobody beats the oracle on pass@1
        assert evaluate(SingleAgentRouter(a), m, idx).passed.mean() <= oracle.passed.mean()
    # the oracle is the cheapest passing execution
    t = int(np.flatnonzero(passed.sum(axis=1) >= 2)[0])
    pick = OracleRouter().choose(m, np.array([t]))[0]
    assert passed[t, pick] and cost[t, pick] == cost[t][passed[t]].min()
    assert OracleRouter().route(m.records[t]) == m.agents[pick]


def test_sale_replay_equals_the_live_rule(market_and_store) -> None:
    m, _ = market_and_store
    w = Weights(w_c=0.02, w_h=0.3, jury={m.agents[0]: 0.1, m.agents[-1]: 0.6})
    picks = AuctionRouter(w).choose(m, np.arange(m.n_tasks))
    pool = _pool(m)
    for t, rec in enumerate(m.records):
        bids = [b for b in rec["bids"]]
        votes = [v for v in rec["jury"]]
        rows = build_table(bids, votes, pool, w)  # the graph's own table
        sel = select_winner([r["cost"] for r in rows], [r["value"] for r in rows], [r["price"] for r in rows], [r["agent"] for r in rows])
        assert m.agents[picks[t]] == rows[sel.index]["agent"], rec["task"]["id"]


def test_sale_variants_pay_what_they_use(market_and_store) -> None:
    m, _ = market_and_store
    idx = np.arange(m.n_tasks)
    full = AuctionRouter(Weights()).decide(m, idx)
    nojury = AuctionRouter(Weights(), "no-jury").decide(m, idx)
    selfj = AuctionRouter(Weights(), "self-only").decide(m, idx)
    peer = AuctionRouter(Weights(), "peers-only").decide(m, idx)
    bids = m.bid_cost.sum(axis=1)
    assert np.allclose(nojury.overhead_cost, bids)
    diag = np.einsum("tii->t", m.vote_cost)
    assert np.allclose(selfj.overhead_cost, bids + diag)
    assert np.allclose(peer.overhead_cost + diag, full.overhead_cost)
    # no cost term: the most expensive agent wins more often than with it
    nop = AuctionRouter(Weights(w_c=0.5, w_h=0.5), "no-cost").choose(m, idx)
    withp = AuctionRouter(Weights(w_c=0.5, w_h=0.5)).choose(m, idx)
    assert (nop == m.largest).mean() > (withp == m.largest).mean()
    # no-entropy equals w_h = 0 with the same cost weight (the default's, scaled to the log's pool with w_h = 0.5)
    w_c = Weights().for_prices(dict(zip(m.agents, m.price_out.tolist(), strict=True))).cost_weight
    assert (AuctionRouter(Weights(), "no-entropy").choose(m, idx) == AuctionRouter(Weights(w_c=w_c, w_h=0.0)).choose(m, idx)).all()
    assert {AuctionRouter(Weights(), v).name for v in SALE_VARIANTS} >= {"sale", "sale:no-jury", "sale:self-only", "sale:peers-only"}
    with pytest.raises(ValueError, match="unknown SALE variant"):
        AuctionRouter(Weights(), "no-everything")


def test_cascade_self_check(market_and_store) -> None:
    m, _ = market_and_store
    idx = np.arange(m.n_tasks)
    never = CascadeRouter(1.01).decide(m, idx)
    assert (never.agent == m.largest).all()
    assert np.allclose(never.overhead_cost, m.bid_cost.sum(axis=1) + sum(m.vote_cost[:, a, a] for a in m.price_order()[:-1]))
    always = CascadeRouter(0.0).decide(m, idx)
    first = m.price_order()[0]
    accepted = m.bid_ok[:, first] & np.isfinite(m.gamma[:, first, first])
    assert (always.agent[accepted] == first).all()
    assert np.allclose(always.overhead_cost[accepted], m.bid_cost[accepted, first] + m.vote_cost[accepted, first, first])
    fitted = CascadeRouter().fit(m, m.indices("dev"))
    assert fitted.threshold in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.01)
    with pytest.raises(RuntimeError, match="threshold"):
        CascadeRouter().choose(m, idx)


def test_text_routers_learn_topics() -> None:
    # Topic 0 tasks only the small agent solves... with the large one failing; topic 1 only the large agent solves.
    records, _ = synthetic_records(80, seed=5)
    vecs = []
    for k, r in enumerate(records):
        topic = k % 2
        for e in r["executions"] + r["plain_executions"]:
            e["passed"] = (e["agent"] == "small") if topic == 0 else (e["agent"] == "xlarge")
        r["task"]["split"] = "dev" if k < 60 else "test"
        v = np.zeros(8)
        v[topic] = 1.0
        v[2 + k % 6] = 0.1
        vecs.append(v)
    m = Market.from_records(records)
    store = EmbeddingStore()
    store.put(m.task_ids, m.texts, np.array(vecs))
    dev, test = m.indices("dev"), m.indices("test")
    expected = np.where(test % 2 == 0, m.agents.index("small"), m.agents.index("xlarge"))
    knn = KNNRouter(store, k=5).fit(m, dev)
    assert (knn.choose(m, test) == expected).all()
    mlp = MLPRouter(store, epochs=300).fit(m, dev)
    assert (mlp.choose(m, test) == expected).mean() >= 0.9
    with pytest.raises(RuntimeError, match="fit"):
        KNNRouter(store).choose(m, test)


def test_standard_routers_and_report(market_and_store, tmp_path) -> None:
    m, store = market_and_store
    routers = standard_routers(m, m.indices("dev"), store=store, weights_mean=Weights(w_c=0.0))
    names = [r.name for r in routers]
    assert {"random", "oracle", "knn", "mlp", "cascade", "sale", "sale:mean-objective"} <= set(names)
    assert all(f"agent:{a}" in names for a in m.agents)
    rep = build_report(m, store=store, n_boot=200)
    paths = write_report(rep, tmp_path)
    import json

    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results) == set(names) - {"sale:mean-objective"}
    s = results["sale"]["all"]
    assert set(s) == {"pass_at_1", "cost_usd", "dollars_per_mtok", "largest_share", "n"}
    assert results[f"agent:{m.agents[m.largest]}"]["all"]["largest_share"] == 1.0
    assert (tmp_path / "pareto.png").stat().st_size > 1000 and len(paths) == 7
    summary = (tmp_path / "summary.md").read_text()
    assert "proxy:synthetic" in summary and "within noise" in summary

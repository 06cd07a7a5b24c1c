"""Weights files record what they were fitted on; the report refuses leaked weights; ablations are refitted."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sale_graph.bench.cli.commands import main
from sale_graph.bench.fit.ablations import fit_with_ablations, load_sale_weights
from sale_graph.bench.fit.provenance import LeakageError, ids_sha256, task_digest
from sale_graph.bench.market.market import Market
from sale_graph.bench.report.build import run_report
from sale_graph.bench.routers.variants import ABLATIONS
from tests.unit.bench.markets import BOTH, COST, ONLY_LARGE, A, B, objectives_market, record


def _log(tmp_path, recs) -> str:
    path = tmp_path / "log.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return str(path)


def _split_market() -> list[dict]:
    dev = objectives_market()
    test = [record(f"t{k}", BOTH if k % 2 else ONLY_LARGE, COST, {A: 0.25, B: 0.75}, split="test") for k in range(6)]
    return dev + test


def test_weights_file_records_objective_split_and_task_hash(tmp_path) -> None:
    log = _log(tmp_path, _split_market())
    assert main(["fit", "--log", log, "--out", str(tmp_path / "w.json"), "--objective", "cvar", "--no-ablations"]) == 0
    meta = json.loads((tmp_path / "w.json").read_text())["meta"]
    dev_ids = [r["task"]["id"] for r in objectives_market()]
    assert meta["objective"] == "cvar" and meta["fit"]["split"] == "dev"
    assert meta["fit"]["task_ids_sha256"] == ids_sha256(dev_ids)
    assert meta["fit"]["task_digests"] == sorted(task_digest(t) for t in dev_ids)


def test_report_refuses_weights_fitted_on_evaluated_tasks(tmp_path, capsys) -> None:
    log = _log(tmp_path, _split_market())
    w_dev, w_all = str(tmp_path / "dev.json"), str(tmp_path / "all.json")
    assert main(["fit", "--log", log, "--out", w_dev, "--no-ablations"]) == 0
    assert main(["fit", "--log", log, "--out", w_all, "--split", "all", "--no-ablations"]) == 0
    # fitted on dev, evaluated on test: fine, and the report says no evaluated task was fitted on
    rep, _, _ = run_report(log, tmp_path / "ok", weights=w_dev, text_routers=False, figures=False)
    assert rep["meta"]["leakage"]["sale"]["tasks"] == 0 and not rep["meta"]["leakage"]["sale"]["overridden"]
    # fitted on all (so on test): refused, by the library and by the CLI (exit 2)
    with pytest.raises(LeakageError, match="6 of the 6 tasks evaluated here"):
        run_report(log, tmp_path / "bad", weights=w_all, text_routers=False, figures=False)
    assert main(["report", "--log", log, "--out", str(tmp_path / "bad"), "--weights", w_all, "--no-text-routers",
                 "--no-figures"]) == 2
    assert "--allow-fitted-on-eval" in capsys.readouterr().err
    # fitted on dev, evaluated on dev: refused too
    with pytest.raises(LeakageError):
        run_report(log, tmp_path / "bad", weights=w_dev, split="dev", text_routers=False, figures=False)
    # the override goes on and stamps the report
    rep, _, _ = run_report(log, tmp_path / "stamped", weights=w_all, text_routers=False, figures=False, allow_fitted_on_eval=True)
    assert rep["meta"]["leakage"]["sale"]["overridden"] is True
    assert "WEIGHTS FITTED ON EVALUATED TASKS" in (tmp_path / "stamped" / "summary.md").read_text()


def test_a_family_fitted_on_is_leakage_even_under_another_task_id(tmp_path) -> None:
    # A FanOutQA leaf fitted on, and its parent question evaluated: same family, different ids.
    recs = _split_market()
    for r in recs[:10]:
        r["task"]["family"] = f"fam-{r['task']['id']}"
    recs[10]["task"]["family"] = "fam-x0"
    log = _log(tmp_path, recs)
    w = str(tmp_path / "w.json")
    assert main(["fit", "--log", log, "--out", w, "--no-ablations"]) == 0
    with pytest.raises(LeakageError, match=r"\(1 task families\)"):
        run_report(log, tmp_path / "r", weights=w, text_routers=False, figures=False)


def test_ablations_are_refitted_with_the_removed_term_at_zero() -> None:
    market = Market.from_records(objectives_market())
    res = fit_with_ablations(market, objective="minmax")
    abl = res.meta["ablations"]
    assert set(abl) == {v.name for v in ABLATIONS}
    assert abl["no-cost"]["w_c"] == 0.0 and abl["no-entropy"]["w_h"] == 0.0
    assert set(abl["no-jury"]["jury"].values()) == {0.0}
    # Without the jury (or with the self-vote only: judge 'small' scores its own bid lowest on every task) only
    # cost and a zero entropy are left: the rule picks small whatever its weights, so no weight vector beats
    # another and the file says so (weights spread over the free terms) instead of calling one "optimal".
    for name in ("no-jury", "self-only"):
        assert abl[name]["meta"]["status"].startswith("no signal"), name
    assert abl["no-jury"]["w_h"] == pytest.approx(0.5) and abl["no-jury"]["w_c"] > 0
    for name, entry in abl.items():
        assert entry["meta"]["variant"] == name
        if name not in ("no-jury", "self-only"):
            assert entry["meta"]["status"] == "optimal"
            assert entry["meta"]["milp_replay_agreement_dev"] == 1.0  # the replayed rule makes the refit's picks
    assert abl["mean-objective"]["meta"]["objective"] == "mean"
    # Without the cost term nothing sets the threshold: the jury gap is positive on every task, so large wins
    # everywhere (small wins only a tie): max 0.5 as the full fit, but mean 0.45 against the full fit's 0.35.
    assert abl["no-cost"]["meta"]["max_regret_dev"] == pytest.approx(0.5)
    assert abl["no-cost"]["meta"]["mean_regret_dev"] == pytest.approx(0.45)
    # Peers-only: small's bid is judged by 'large' alone (0 everywhere), large's by 'small' alone (0.9, 0.75, 0.6 on
    # X, Y, Z): still a threshold that separates Z, so the peers reach the full optimum (0.5; mean 0.35).
    assert abl["peers-only"]["meta"]["max_regret_dev"] == pytest.approx(0.5)
    assert abl["peers-only"]["meta"]["mean_regret_dev"] == pytest.approx(0.35)


def test_report_shows_refitted_ablations_by_what_they_remove(tmp_path) -> None:
    log = _log(tmp_path, _split_market())
    w = str(tmp_path / "w.json")
    assert main(["fit", "--log", log, "--out", w, "--objective", "minmax"]) == 0
    sw = load_sale_weights(w)
    assert set(sw.ablations) == {v.name for v in ABLATIONS}
    rep, _, _ = run_report(log, tmp_path / "r", weights=w, text_routers=False, figures=False)
    names = set(rep["outcomes"])
    assert {f"sale:{v.name}" for v in ABLATIONS} <= names
    summary = (tmp_path / "r" / "summary.md").read_text()
    assert "`sale:no-cost`: removes the cost term (w_c = 0)" in summary
    assert "`sale:self-only`: removes the peers' votes" in summary
    # the no-jury ablation pays for no vote
    out = rep["outcomes"]["sale:no-jury"]
    market = Market.from_log(log)
    test = market.indices("test")
    assert np.allclose(out.overhead_cost, market.bid_cost[test].sum(axis=1))

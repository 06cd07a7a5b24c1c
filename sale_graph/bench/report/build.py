"""`sale bench report`: every router replayed on a market log, per domain, bin and source, with uncertainty.

Outputs in ``--out DIR``:

* ``results.json``: ``{router: {bin: {pass_at_1, cost_usd, dollars_per_mtok, largest_share, n}}}`` over
  all domains, ``bin`` being a bin label (``"0-0.1"`` ... ``"12.5-60"``) or ``"all"``;
* ``results_by_domain.json``: ``{domain: {router: {bin: {...}}}}``;
* ``report.json``: the above plus intervals, per-source tables, auction shares, paired comparisons,
  cost-quality curves, AIQ, Pareto dominance, the live runs (when given) and ``meta`` (with
  ``meta.synthetic`` for a SYNTHETIC log and ``meta.leakage``);
* ``summary.md`` (:mod:`sale_graph.bench.report.markdown`) and figures (:mod:`sale_graph.bench.report.figures`).

Definitions. pass@1: share of tasks the executing agent solved (its logged, graded execution).
cost: dollars of every call the router makes (execution, plus bids/votes for SALE and the cascade).
dollars per million tokens: total dollars / total tokens * 1e6 (a blended price).
largest share: share of tasks executed by the dearest agent. Auction share: the router's own
calls (bids, votes) as a share of its tokens, and of its latency (bids and votes run in parallel,
so their latency is the slowest bid plus the slowest vote). Intervals: :mod:`sale_graph.bench.report.stats`.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from sale_graph.bench.fit.ablations import load_sale_weights
from sale_graph.bench.fit.provenance import check_leakage
from sale_graph.bench.market.errors import MarketError
from sale_graph.bench.market.log import read_log
from sale_graph.bench.market.market import Market, split_records
from sale_graph.bench.report.curves import cost_quality_curves, curves_summary
from sale_graph.bench.report.figures import make_figures
from sale_graph.bench.report.live import live_section
from sale_graph.bench.report.markdown import summary_markdown
from sale_graph.bench.report.stats import GroupStats, group_stats, paired_diff, task_groups
from sale_graph.bench.routers.auction import SaleWeights
from sale_graph.bench.routers.base import Replay, Router, evaluate
from sale_graph.bench.routers.classifier import ClassifierRouter
from sale_graph.bench.routers.standard import standard_routers
from sale_graph.bench.routers.text import EmbeddingStore, default_cache_path
from sale_graph.bench.routers.variants import VARIANTS
from sale_graph.bench.tasks.schema import BIN_LABELS
from sale_graph.weights import Weights, load_weights

N_BOOT = 1000
N_ORDERS = 5


def small_share_curves(out: Replay, largest: int, n_orders: int = N_ORDERS, seed: int = 0) -> np.ndarray:
    """Cumulative share of tasks won by agents other than the largest, over ``n_orders`` random task orders."""
    rng = np.random.default_rng(seed)
    small = (out.agent != largest).astype(float)
    curves = []
    for _ in range(n_orders):
        perm = rng.permutation(len(small))
        curves.append(np.cumsum(small[perm]) / np.arange(1, len(small) + 1))
    return np.array(curves)


def _stats(outcomes: dict[str, Replay], groups: dict[Any, np.ndarray], boots: dict[Any, np.ndarray],
           largest: int) -> dict[Any, dict[str, GroupStats]]:
    return {key: {name: group_stats(out, sel, boots[key], largest) for name, out in outcomes.items()}
            for key, sel in groups.items()}


def _notes(market: Market, routers: list[Router], sw: SaleWeights, split: str) -> dict[str, Any]:
    """The report's plain statements: training, baselines, ablations, task orders."""
    if split in ("dev", "all"):
        train = "routers trained and evaluated on overlapping tasks (split != test): optimistic for trained routers"
    else:
        train = "trained routers (knn, mlp, cascade threshold) fitted on dev, evaluated on test"
    if market.has_plain:
        baselines = ("routers that do not bid (single agents, random, oracle, knn, mlp, llm-classifier) are evaluated on the plain "
                     "executions (no plan); SALE and the cascade on the executions of the bids they paid for")
    else:
        baselines = ("this log has no plain executions (recorded with --no-plain, or before they were recorded): routers that do not bid "
                     "are evaluated on executions that follow the chosen agent's bid, and are CHARGED FOR THAT BID (its tokens, dollars "
                     "and seconds)")
    ablations = {r.name: VARIANTS[r.name.split(":", 1)[1]].removes for r in routers if r.name.startswith("sale:")}
    ablation_note = "" if ablations else (
        "no ablations: they are refitted by `sale bench fit` (with the removed term fixed at zero) and read from its "
        "weights file; replaying SALE's own weights minus a term would not measure the term")
    order = ("SALE is replayed without memory, so its choices do not depend on the task order: pass@1 and cost are "
             f"identical over the {N_ORDERS} orders; the order only moves the running share of wins. `sale bench live "
             "--orders 5` measures SALE with its memory, where the order matters (give its log to the report).")
    clf = next((r for r in routers if isinstance(r, ClassifierRouter)), None)
    classifier = clf.note(market, market.indices(split)) if clf else (
        "llm-classifier: not available (this log has no classifier records: recorded before them or with --no-classifier)")
    return {"train_note": train, "baselines_note": baselines, "classifier_note": classifier, "ablations": ablations,
            "ablations_note": ablation_note,
            "order_note": order, "sale_fit": {k: sw.meta.get(k) for k in ("objective", "status", "cvar_alpha", "tolerance")
                                              if k in sw.meta}}


def build_report(
    market: Market,
    *,
    weights: Weights | SaleWeights | None = None,
    weights_mean: Weights | None = None,
    split: str = "test",
    store: EmbeddingStore | None = None,
    text_routers: bool = True,
    n_boot: int = N_BOOT,
    seed: int = 0,
    leakage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Evaluate every router on ``split`` (trained on dev) and compute every table of the report."""
    eval_idx = market.indices(split)
    if len(eval_idx) == 0:
        raise ValueError(f"the log has no {split} tasks; use --split all or record more tasks")
    dev_idx = market.indices("dev")
    sw = weights if isinstance(weights, SaleWeights) else SaleWeights(weights or Weights())
    sw = replace(sw, full=sw.full.for_prices(dict(zip(market.agents, market.price_out.tolist(), strict=True))))
    routers = standard_routers(market, dev_idx, weights=sw, weights_mean=weights_mean, store=store,
                               text_routers=text_routers and len(dev_idx) > 0)
    outcomes: dict[str, Replay] = {r.name: evaluate(r, market, eval_idx) for r in routers}
    largest = market.largest
    rng = np.random.default_rng(seed)
    groups = task_groups(market.domains[eval_idx], market.bins[eval_idx], BIN_LABELS)
    sources = market.sources[eval_idx]
    src_groups = {s: np.flatnonzero(sources == s) for s in sorted(set(sources.tolist()))}
    boots = {k: rng.integers(0, len(sel), size=(n_boot, len(sel))) for k, sel in groups.items()}
    src_boots = {k: rng.integers(0, len(sel), size=(n_boot, len(sel))) for k, sel in src_groups.items()}
    flat = _stats(outcomes, groups, boots, largest)
    stats: dict[str, dict[str, dict[str, GroupStats]]] = {}
    for (dom, label), by_router in flat.items():
        for name, st in by_router.items():
            stats.setdefault(dom, {}).setdefault(name, {})[label] = st
    comparisons = {f"{dom}/{label}": {o: paired_diff(outcomes["sale"], outcomes[o], sel, boots[(dom, label)])
                                      for o in outcomes if o != "sale"} for (dom, label), sel in groups.items()}
    points = {n: (float(o.cost.mean()), float(o.passed.mean())) for n, o in outcomes.items()}
    cascade = next((r for r in routers if r.name == "cascade"), None)
    meta = {
        "title": "SYNTHETIC SALE benchmark report" if market.synthetic else "SALE benchmark report",
        "synthetic": market.synthetic or False, "split": split, "tasks": int(len(eval_idx)), "dev_tasks": int(len(dev_idx)),
        "agents": market.agents, "prices_per_mtok": dict(zip(market.agents, market.price_out.tolist(), strict=True)),
        "largest_agent": market.agents[largest], "bin_sources": sorted({market.bin_sources[t] for t in eval_idx}),
        "sources": list(src_groups), "bootstrap_resamples": n_boot, "plain_executions": market.has_plain,
        "sale_weights": sw.full.to_dict(), "sale_weights_source": sw.full.source, "sale_cost_rule": sw.full.cost_rule,
        "cascade_threshold": getattr(cascade, "threshold", None), "task_orders": N_ORDERS,
        "leakage": leakage or {"known": False}, **_notes(market, routers, sw, split),
    }
    return {
        "meta": meta, "stats": stats, "stats_by_source": _stats(outcomes, src_groups, src_boots, largest),
        "comparisons_vs_sale": comparisons, "largest_router": f"agent:{market.agents[largest]}",
        "curves": curves_summary(points, cost_quality_curves(routers, market, eval_idx)),
        "small_share_curves": small_share_curves(outcomes["sale"], largest, N_ORDERS, seed), "outcomes": outcomes,
    }


def _results_json(rep: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    stats = rep["stats"]
    overall = {r: {b: s.short() for b, s in by_bin.items()} for r, by_bin in stats["all"].items()}
    by_dom = {d: {r: {b: s.short() for b, s in by_bin.items()} for r, by_bin in rs.items()} for d, rs in stats.items() if d != "all"}
    return overall, by_dom


def report_json(rep: dict[str, Any]) -> dict[str, Any]:
    """The content of ``report.json`` (everything but the per-task outcomes)."""
    full: dict[str, Any] = {"meta": rep["meta"]}
    if "stats" in rep:
        full.update({
            "stats": {d: {r: {b: s.full() for b, s in bb.items()} for r, bb in rs.items()} for d, rs in rep["stats"].items()},
            "stats_by_source": {s: {r: st.full() for r, st in rs.items()} for s, rs in rep["stats_by_source"].items()},
            "comparisons_vs_sale": rep["comparisons_vs_sale"], "curves": rep["curves"],
            "small_share_mean_final": float(rep["small_share_curves"][:, -1].mean()),
        })
    if rep.get("live"):
        full["live"] = {k: v for k, v in rep["live"].items() if k != "curves"}
    return full


def write_report(rep: dict[str, Any], out_dir: str | Path, figures: bool = True) -> list[Path]:
    """Write the JSON files, the markdown summary and (optionally) the figures; return the paths."""
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    if "stats" in rep:
        overall, by_dom = _results_json(rep)
        paths += [out / "results.json", out / "results_by_domain.json"]
        paths[0].write_text(json.dumps(overall, indent=1) + "\n")
        paths[1].write_text(json.dumps(by_dom, indent=1) + "\n")
    paths += [out / "report.json", out / "summary.md"]
    paths[-2].write_text(json.dumps(report_json(rep), indent=1) + "\n")
    paths[-1].write_text(summary_markdown(rep))
    if figures:
        paths += make_figures(rep, out)
    return paths


def run_report(logs: str | Path | list[str | Path], out_dir: str | Path, *, weights: str | None = None,
               weights_mean: str | None = None, split: str = "test", text_routers: bool = True, figures: bool = True,
               allow_fitted_on_eval: bool = False) -> tuple[dict[str, Any], list[Path], float]:
    """Load the logs (market and/or live records), build and write the report; return it, the files and the seconds."""
    start = time.perf_counter()
    paths = [logs] if isinstance(logs, (str, Path)) else list(logs)
    market_recs: list[dict[str, Any]] = []
    live_recs: list[dict[str, Any]] = []
    market_paths: list[str | Path] = []
    for p in paths:
        m, lv = split_records(read_log(p).records)
        market_recs += m
        live_recs += lv
        market_paths += [p] if m else []
    if not market_recs and not live_recs:
        raise MarketError(f"{', '.join(map(str, paths))}: no complete record yet")
    rep: dict[str, Any] = {"meta": {"title": "SALE benchmark report (live runs only)", "synthetic": False}}
    market = None
    if market_recs:
        market = Market.from_records(market_recs, source=", ".join(map(str, market_paths)))
        eval_idx = market.indices(split)
        leak = check_leakage("SALE", weights, market, eval_idx.tolist(), allow_fitted_on_eval)
        leak_mean = check_leakage("mean-objective", weights_mean, market, eval_idx.tolist(), allow_fitted_on_eval)
        store = EmbeddingStore(default_cache_path(market_paths[0]))  # the embedding cache lives next to the market log
        rep = build_report(market, weights=load_sale_weights(weights), split=split, store=store, text_routers=text_routers,
                           weights_mean=load_weights(weights_mean) if weights_mean else None,
                           leakage={"sale": leak, "mean_objective": leak_mean})
    if live_recs:
        rep["live"] = live_section(live_recs, market, rep.get("outcomes"))
    out_paths = write_report(rep, out_dir, figures=figures)
    return rep, out_paths, time.perf_counter() - start


__all__ = ["build_report", "report_json", "run_report", "write_report"]

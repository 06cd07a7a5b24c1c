"""`sale bench report`: every router replayed on a market log, per domain and bin, with uncertainty.

Outputs in ``--out DIR``:

* ``results.json``: ``{router: {bin: {pass_at_1, cost_usd, dollars_per_mtok, largest_share, n}}}`` over
  all domains, ``bin`` being a bin label (``"0-0.1"`` ... ``"12.5-60"``) or ``"all"``;
* ``results_by_domain.json``: ``{domain: {router: {bin: {...}}}}``;
* ``report.json``: the above plus confidence intervals, auction shares, paired comparisons and metadata;
* ``summary.md``: tables and plain statements of which differences are within noise;
* ``pass_cost_per_bin.png``, ``pareto.png``, ``small_share_over_time.png``.

Definitions. pass@1: share of tasks the executing agent solved (its logged, graded execution).
cost: dollars of every call the router makes (execution, plus bids/votes for SALE and the cascade).
dollars per million tokens: total dollars / total tokens * 1e6 (a blended price).
largest share: share of tasks executed by the dearest agent. Auction share: the router's own
calls (bids, votes) as a share of its tokens, and of its latency (bids and votes run in parallel,
so their latency is the slowest bid plus the slowest vote). 95% intervals: percentile bootstrap over
tasks (1,000 resamples); differences between two routers use the paired bootstrap on the same
resamples, and a difference whose interval contains 0 is reported as within noise.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sale_graph.bench.market import Market
from sale_graph.bench.routers import (
    EmbeddingStore, Outcome, Router, SaleRouter, default_cache_path, evaluate, standard_routers,
)
from sale_graph.bench.tasks import BIN_LABELS
from sale_graph.weights import Weights

N_BOOT = 1000
N_ORDERS = 5


@dataclass
class GroupStats:
    """Metrics of one router on one group of tasks."""

    n: int
    pass_at_1: float
    pass_ci: tuple[float, float]
    cost_usd: float
    cost_ci: tuple[float, float]
    dollars_per_mtok: float
    largest_share: float
    auction_token_share: float
    auction_latency_share: float

    def short(self) -> dict[str, Any]:
        return {"pass_at_1": self.pass_at_1, "cost_usd": self.cost_usd, "dollars_per_mtok": self.dollars_per_mtok,
                "largest_share": self.largest_share, "n": self.n}

    def full(self) -> dict[str, Any]:
        return {**self.short(), "pass_at_1_ci95": list(self.pass_ci), "cost_usd_ci95": list(self.cost_ci),
                "auction_token_share": self.auction_token_share, "auction_latency_share": self.auction_latency_share}


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b > 0 else 0.0


def group_stats(out: Outcome, sel: np.ndarray, boot: np.ndarray, largest: int) -> GroupStats:
    """Metrics of the tasks ``sel`` (positions in ``out``) with bootstrap resamples ``boot`` (positions into ``sel``)."""
    passed = out.passed[sel].astype(float)
    cost = out.cost[sel]
    p_b = passed[boot].mean(axis=1)
    c_b = cost[boot].sum(axis=1)
    return GroupStats(
        n=int(len(sel)), pass_at_1=float(passed.mean()),
        pass_ci=(float(np.percentile(p_b, 2.5)), float(np.percentile(p_b, 97.5))),
        cost_usd=float(cost.sum()), cost_ci=(float(np.percentile(c_b, 2.5)), float(np.percentile(c_b, 97.5))),
        dollars_per_mtok=_ratio(cost.sum() * 1e6, out.tokens[sel].sum()),
        largest_share=float(np.mean(out.agent[sel] == largest)),
        auction_token_share=_ratio(out.overhead_tokens[sel].sum(), out.tokens[sel].sum()),
        auction_latency_share=_ratio(out.overhead_seconds[sel].sum(), out.seconds[sel].sum()),
    )


def paired_diff(a: Outcome, b: Outcome, sel: np.ndarray, boot: np.ndarray) -> dict[str, Any]:
    """Paired bootstrap of ``a - b`` in pass@1 and in total cost on the same tasks; ``within_noise`` if the CI holds 0."""
    dp = a.passed[sel].astype(float) - b.passed[sel].astype(float)
    dc = a.cost[sel] - b.cost[sel]
    pb, cb = dp[boot].mean(axis=1), dc[boot].sum(axis=1)
    pci = (float(np.percentile(pb, 2.5)), float(np.percentile(pb, 97.5)))
    cci = (float(np.percentile(cb, 2.5)), float(np.percentile(cb, 97.5)))
    return {"pass_diff": float(dp.mean()), "pass_diff_ci95": list(pci), "pass_within_noise": pci[0] <= 0 <= pci[1],
            "cost_diff": float(dc.sum()), "cost_diff_ci95": list(cci), "cost_within_noise": cci[0] <= 0 <= cci[1],
            "cost_ratio": _ratio(a.cost[sel].sum(), b.cost[sel].sum())}


def small_share_curves(out: Outcome, largest: int, n_orders: int = N_ORDERS, seed: int = 0) -> np.ndarray:
    """Cumulative share of tasks won by agents other than the largest, over ``n_orders`` random task orders."""
    rng = np.random.default_rng(seed)
    small = (out.agent != largest).astype(float)
    curves = []
    for _ in range(n_orders):
        perm = rng.permutation(len(small))
        curves.append(np.cumsum(small[perm]) / np.arange(1, len(small) + 1))
    return np.array(curves)


def _fmt_ci(v: float, ci: tuple[float, float] | list[float], pct: bool = True) -> str:
    if pct:
        return f"{100 * v:.1f} [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"
    return f"{v:.4g} [{ci[0]:.3g}, {ci[1]:.3g}]"


def build_report(
    market: Market,
    *,
    weights: Weights | None = None,
    weights_mean: Weights | None = None,
    split: str = "test",
    store: EmbeddingStore | None = None,
    text_routers: bool = True,
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> dict[str, Any]:
    """Evaluate every router on ``split`` (trained on dev) and compute every table of the report."""
    eval_idx = market.indices(split)
    if len(eval_idx) == 0:
        raise ValueError(f"the log has no {split} tasks; use --split all or record more tasks")
    dev_idx = market.indices("dev")
    if split == "dev" or split == "all":
        train_note = "routers trained and evaluated on overlapping tasks (split != test): optimistic for trained routers"
    else:
        train_note = "trained routers (knn, mlp, cascade threshold) fitted on dev, evaluated on test"
    routers = standard_routers(market, dev_idx, weights=weights, weights_mean=weights_mean, store=store,
                               text_routers=text_routers and len(dev_idx) > 0)
    outcomes: dict[str, Outcome] = {r.name: evaluate(r, market, eval_idx) for r in routers}
    largest = market.largest
    rng = np.random.default_rng(seed)
    doms = market.domains[eval_idx]
    bins = market.bins[eval_idx]

    groups: dict[tuple[str, str], np.ndarray] = {}
    for dom in ["all", *sorted(set(doms.tolist()))]:
        dmask = np.ones(len(eval_idx), dtype=bool) if dom == "all" else doms == dom
        groups[(dom, "all")] = np.flatnonzero(dmask)
        for b, label in enumerate(BIN_LABELS):
            sel = np.flatnonzero(dmask & (bins == b))
            if len(sel):
                groups[(dom, label)] = sel
    boots = {k: rng.integers(0, len(sel), size=(n_boot, len(sel))) for k, sel in groups.items()}

    stats: dict[str, dict[str, dict[str, GroupStats]]] = {}
    for (dom, label), sel in groups.items():
        for name, out in outcomes.items():
            stats.setdefault(dom, {}).setdefault(name, {})[label] = group_stats(out, sel, boots[(dom, label)], largest)

    largest_name = f"agent:{market.agents[largest]}"
    comparisons: dict[str, Any] = {}
    for (dom, label), sel in groups.items():
        for other in outcomes:
            if other == "sale":
                continue
            comparisons.setdefault(f"{dom}/{label}", {})[other] = paired_diff(outcomes["sale"], outcomes[other], sel, boots[(dom, label)])

    curves = small_share_curves(outcomes["sale"], largest, N_ORDERS, seed)
    proxies = sorted({market.bin_sources[t] for t in eval_idx})
    cascade = next((r for r in routers if r.name == "cascade"), None)
    return {
        "meta": {
            "split": split, "tasks": int(len(eval_idx)), "dev_tasks": int(len(dev_idx)), "agents": market.agents,
            "prices_per_mtok": dict(zip(market.agents, market.price_out.tolist())), "largest_agent": market.agents[largest],
            "bin_sources": proxies, "bootstrap_resamples": n_boot, "train_note": train_note,
            "sale_weights": (weights or Weights()).to_dict(), "sale_weights_source": (weights or Weights()).source,
            "cascade_threshold": getattr(cascade, "threshold", None),
            "task_orders": N_ORDERS,
            "order_note": ("SALE is replayed without memory, so its choices do not depend on the task order: pass@1 and cost "
                           f"are identical over the {N_ORDERS} orders; the order only moves the running share of wins. "
                           "Use `sale bench live` for SALE with memory, where the order matters."),
        },
        "stats": stats,
        "comparisons_vs_sale": comparisons,
        "largest_router": largest_name,
        "small_share_curves": curves,
        "outcomes": outcomes,
    }


def _results_json(rep: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    stats = rep["stats"]
    overall = {r: {b: s.short() for b, s in by_bin.items()} for r, by_bin in stats["all"].items()}
    by_dom = {d: {r: {b: s.short() for b, s in by_bin.items()} for r, by_bin in rs.items()} for d, rs in stats.items() if d != "all"}
    return overall, by_dom


def summary_markdown(rep: dict[str, Any]) -> str:
    """The markdown summary: meta, the main table, per-bin pass@1, and the noise statements."""
    meta, stats = rep["meta"], rep["stats"]
    lines = [
        "# SALE benchmark report", "",
        f"Evaluated on the **{meta['split']}** split: {meta['tasks']} tasks ({meta['dev_tasks']} dev tasks for training). "
        f"Agents and prices ($/1M tokens): " + ", ".join(f"{a} {p:g}" for a, p in meta["prices_per_mtok"].items()) + ".",
        "",
        f"**Bins** are human solution-time bins (minutes); here decided by: {', '.join(meta['bin_sources'])} "
        "(proxies are effort estimates, not human timings; see `sale_graph/bench/datasets.py`).",
        f"SALE weights: {meta['sale_weights_source']} ({json.dumps(meta['sale_weights'])}). {meta['train_note']}. "
        f"Cascade threshold (self-score, picked on dev): {meta['cascade_threshold']}.",
        f"{meta['order_note']}", "",
    ]
    for dom in stats:
        lines += [f"## {dom}: all bins", "",
                  "| router | pass@1 % [95% CI] | cost $ [95% CI] | $/1M tok | largest share | auction tokens | auction latency |",
                  "|---|---|---|---|---|---|---|"]
        for name, by_bin in stats[dom].items():
            s = by_bin["all"]
            lines.append(f"| {name} | {_fmt_ci(s.pass_at_1, s.pass_ci)} | {_fmt_ci(s.cost_usd, s.cost_ci, pct=False)} | "
                         f"{s.dollars_per_mtok:.4f} | {100 * s.largest_share:.1f}% | {100 * s.auction_token_share:.2f}% | "
                         f"{100 * s.auction_latency_share:.2f}% |")
        labels = [b for b in BIN_LABELS if b in next(iter(stats[dom].values()))]
        lines += ["", f"### {dom}: pass@1 % per bin (n tasks)", "",
                  "| router | " + " | ".join(f"{b} (n={next(iter(stats[dom].values()))[b].n})" for b in labels) + " |",
                  "|---|" + "---|" * len(labels)]
        for name, by_bin in stats[dom].items():
            lines.append(f"| {name} | " + " | ".join(f"{100 * by_bin[b].pass_at_1:.1f}" for b in labels) + " |")
        lines.append("")
    lines += ["## SALE against every other router (paired bootstrap, SALE minus other)", ""]
    for group, comps in rep["comparisons_vs_sale"].items():
        if not group.endswith("/all"):
            continue
        lines.append(f"**{group[:-4]}**:")
        for other, c in comps.items():
            pn = "within noise" if c["pass_within_noise"] else "significant"
            cn = "within noise" if c["cost_within_noise"] else "significant"
            lines.append(f"- vs {other}: pass@1 {100 * c['pass_diff']:+.1f} pts "
                         f"[{100 * c['pass_diff_ci95'][0]:+.1f}, {100 * c['pass_diff_ci95'][1]:+.1f}] ({pn}); "
                         f"cost x{c['cost_ratio']:.2f}, {c['cost_diff']:+.3g} $ [{c['cost_diff_ci95'][0]:+.3g}, "
                         f"{c['cost_diff_ci95'][1]:+.3g}] ({cn})")
        lines.append("")
    noisy = [f"{g} vs {o}" for g, comps in rep["comparisons_vs_sale"].items() if not g.endswith("/all")
             for o, c in comps.items() if o == rep["largest_router"] and c["pass_within_noise"]]
    if noisy:
        lines += [f"Per bin, SALE's pass@1 difference to the largest agent is within noise in: {', '.join(noisy)}.", ""]
    return "\n".join(lines) + "\n"


def make_figures(rep: dict[str, Any], out_dir: Path) -> list[Path]:
    """The three PNG figures (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    stats = rep["stats"]["all"]
    key = [r for r in stats if r.startswith("agent:")] + [r for r in ("sale", "knn", "mlp", "cascade", "oracle") if r in stats]
    labels = [b for b in BIN_LABELS if b in stats["sale"]]
    x = np.arange(len(labels))
    width = 0.8 / max(1, len(key))
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    for k, name in enumerate(key):
        axes[0].bar(x + k * width, [100 * stats[name][b].pass_at_1 for b in labels], width, label=name)
        axes[1].bar(x + k * width, [stats[name][b].cost_usd for b in labels], width, label=name)
    for ax, title in zip(axes, ("pass@1 (%)", "total cost ($)")):
        ax.set_xticks(x + width * (len(key) - 1) / 2, labels)
        ax.set_xlabel("bin (minutes; " + ", ".join(rep["meta"]["bin_sources"]) + ")", fontsize=8)
        ax.set_title(title)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    paths.append(out_dir / "pass_cost_per_bin.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 5))
    pts = [(stats[r]["all"].cost_usd, 100 * stats[r]["all"].pass_at_1, r) for r in stats]
    for c, p, r in pts:
        ax.scatter(c, p, s=30)
        ax.annotate(r, (c, p), fontsize=7, xytext=(3, 3), textcoords="offset points")
    frontier, best = [], -1.0
    for c, p, r in sorted(pts):
        if p > best:
            frontier.append((c, p))
            best = p
    ax.plot(*zip(*frontier), "k--", lw=1, label="Pareto frontier")
    ax.set_xlabel("total cost ($)")
    ax.set_ylabel("pass@1 (%)")
    ax.legend(fontsize=8)
    ax.set_title("performance-cost, every router")
    fig.tight_layout()
    paths.append(out_dir / "pareto.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    curves = rep["small_share_curves"]
    fig, ax = plt.subplots(figsize=(7, 4))
    steps = np.arange(1, curves.shape[1] + 1)
    ax.plot(steps, curves.mean(axis=0), label=f"SALE (mean of {curves.shape[0]} orders)")
    ax.fill_between(steps, curves.min(axis=0), curves.max(axis=0), alpha=0.3, label="min-max over orders")
    ax.set_ylim(0, 1)
    ax.set_xlabel("tasks seen")
    ax.set_ylabel("share won by agents other than the largest")
    ax.set_title("small agents' share of wins over time (replay, no memory)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    paths.append(out_dir / "small_share_over_time.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    return paths


def write_report(rep: dict[str, Any], out_dir: str | Path, figures: bool = True) -> list[Path]:
    """Write the JSON files, the markdown summary and (optionally) the figures; return the paths."""
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    overall, by_dom = _results_json(rep)
    paths = [out / "results.json", out / "results_by_domain.json", out / "report.json", out / "summary.md"]
    paths[0].write_text(json.dumps(overall, indent=1) + "\n")
    paths[1].write_text(json.dumps(by_dom, indent=1) + "\n")
    full = {
        "meta": rep["meta"],
        "stats": {d: {r: {b: s.full() for b, s in bb.items()} for r, bb in rs.items()} for d, rs in rep["stats"].items()},
        "comparisons_vs_sale": rep["comparisons_vs_sale"],
        "small_share_mean_final": float(rep["small_share_curves"][:, -1].mean()),
    }
    paths[2].write_text(json.dumps(full, indent=1) + "\n")
    paths[3].write_text(summary_markdown(rep))
    if figures:
        paths += make_figures(rep, out)
    return paths


def run_report(log: str | Path, out_dir: str | Path, *, weights: str | None = None, weights_mean: str | None = None,
               split: str = "test", text_routers: bool = True, figures: bool = True) -> tuple[dict[str, Any], list[Path], float]:
    """Load the log, build and write the report; return it, the files written and the seconds it took."""
    from sale_graph.weights import load_weights

    start = time.perf_counter()
    market = Market.from_log(log)
    store = EmbeddingStore(default_cache_path(log))
    rep = build_report(market, weights=load_weights(weights) if weights else None,
                       weights_mean=load_weights(weights_mean) if weights_mean else None,
                       split=split, store=store, text_routers=text_routers)
    paths = write_report(rep, out_dir, figures=figures)
    return rep, paths, time.perf_counter() - start


__all__ = ["build_report", "run_report", "summary_markdown", "write_report", "Router", "SaleRouter"]

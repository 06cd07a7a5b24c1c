"""The report's figures (matplotlib, Agg backend): pass@1 and cost per bin, cost-quality, small agents' share."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sale_graph.bench.tasks.schema import BIN_LABELS


def _title(rep: dict[str, Any], text: str) -> str:
    return ("SYNTHETIC: " if rep["meta"].get("synthetic") else "") + text


def _per_bin(rep: dict[str, Any], plt: Any, path: Path) -> None:
    stats = rep["stats"]["all"]
    others = ("sale", "knn", "mlp", "llm-classifier", "cascade", "oracle")
    key = [r for r in stats if r.startswith("agent:")] + [r for r in others if r in stats]
    labels = [b for b in BIN_LABELS if b in stats["sale"]]
    x = np.arange(len(labels))
    width = 0.8 / max(1, len(key))
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    for k, name in enumerate(key):
        axes[0].bar(x + k * width, [100 * stats[name][b].pass_at_1 for b in labels], width, label=name)
        axes[1].bar(x + k * width, [stats[name][b].cost_usd for b in labels], width, label=name)
    for ax, title in zip(axes, ("pass@1 (%)", "total cost ($)"), strict=True):
        ax.set_xticks(x + width * (len(key) - 1) / 2, labels)
        ax.set_xlabel("bin (minutes; " + ", ".join(rep["meta"]["bin_sources"]) + ")", fontsize=8)
        ax.set_title(_title(rep, title))
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _pareto(rep: dict[str, Any], plt: Any, path: Path) -> None:
    curves = rep["curves"]
    fig, ax = plt.subplots(figsize=(8, 5.5))
    for name, pt in curves["points"].items():
        c, p = pt["cost_per_task"], 100 * pt["pass_at_1"]
        ax.scatter(c, p, s=30, marker="o" if name not in curves["dominated_by"] else "x")
        ax.annotate(name, (c, p), fontsize=7, xytext=(3, 3), textcoords="offset points")
    for name, pts in curves["curves"].items():
        xs = [q["cost_per_task"] for q in pts]
        ys = [100 * q["pass_at_1"] for q in pts]
        ax.plot(xs, ys, "-", lw=1, alpha=0.6, label=f"{name} curve (AIQ {curves['aiq'].get(name, 0):.3f})")
    frontier, best = [], -1.0
    real = [pt for name, pt in curves["points"].items() if name != "oracle"]  # the oracle is a bound, not a router
    for c, p in sorted((pt["cost_per_task"], 100 * pt["pass_at_1"]) for pt in real):
        if p > best:
            frontier.append((c, p))
            best = p
    ax.plot(*zip(*frontier, strict=True), "k--", lw=1, label="Pareto frontier of the routers' points (oracle left out)")
    ax.set_xlabel("dollars per task")
    ax.set_ylabel("pass@1 (%)")
    ax.legend(fontsize=7)
    ax.set_title(_title(rep, "cost-quality, every router (x: Pareto-dominated)"))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _small_share(rep: dict[str, Any], plt: Any, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4))
    if "small_share_curves" in rep:
        curves = rep["small_share_curves"]
        steps = np.arange(1, curves.shape[1] + 1)
        ax.plot(steps, curves.mean(axis=0), label=f"SALE replayed, no memory (mean of {curves.shape[0]} orders)")
        ax.fill_between(steps, curves.min(axis=0), curves.max(axis=0), alpha=0.2)
    live = rep.get("live") or {}
    if live.get("curves"):
        lc = np.array(live["curves"], dtype=float)
        steps = np.arange(1, lc.shape[1] + 1)
        ax.plot(steps, np.nanmean(lc, axis=0), label=f"SALE live, with memory (mean of {lc.shape[0]} orders)")
        ax.fill_between(steps, np.nanmin(lc, axis=0), np.nanmax(lc, axis=0), alpha=0.2)
    ax.set_ylim(0, 1)
    ax.set_xlabel("tasks seen")
    ax.set_ylabel("share won by agents other than the largest")
    ax.set_title(_title(rep, "small agents' share of wins over time (band: min-max over orders)"), fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def make_figures(rep: dict[str, Any], out_dir: Path) -> list[Path]:
    """Write the figures that the report's content allows; return their paths."""
    import matplotlib  # optional extra: bench (matplotlib)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # optional extra: bench; after use("Agg")

    paths = []
    if "stats" in rep:
        paths += [out_dir / "pass_cost_per_bin.png", out_dir / "pareto.png"]
        _per_bin(rep, plt, paths[0])
        _pareto(rep, plt, paths[1])
    paths.append(out_dir / "small_share_over_time.png")
    _small_share(rep, plt, paths[-1])
    return paths

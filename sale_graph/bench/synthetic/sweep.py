"""A sweep over SYNTHETIC markets of rising signal: can the harness tell good signal from none?

For every signal ``Q`` of the grid (and every seed): a SYNTHETIC market
(:mod:`sale_graph.bench.synthetic.generator`), SALE's weights fitted on its dev split with each
objective asked for, and on its test split the pass@1 and dollars per task of SALE (one row
per objective), the largest agent, kNN (on the synthetic embeddings) and the oracle, plus
SALE's mean test regret (the fit's own regret, on test). One figure: pass@1 and cost
against ``Q``. Every output says SYNTHETIC.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sale_graph.bench.fit.defaults import DEFAULT_OBJECTIVE
from sale_graph.bench.fit.programme import FitError, outcome_regret
from sale_graph.bench.fit.weights import fit_weights
from sale_graph.bench.market.market import Market
from sale_graph.bench.routers.auction import AuctionRouter
from sale_graph.bench.routers.base import evaluate
from sale_graph.bench.routers.simple import OracleRouter, SingleAgentRouter
from sale_graph.bench.routers.text import EmbeddingStore, KNNRouter
from sale_graph.bench.synthetic.generator import synthetic_records

SIGNALS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


def _point(passed: np.ndarray, cost: np.ndarray) -> dict[str, float]:
    return {"pass_at_1": float(passed.mean()), "cost_per_task": float(cost.mean())}


def sweep_point(signal: float, *, n_tasks: int = 753, seed: int = 0, objectives: Sequence[str] = (DEFAULT_OBJECTIVE,),
                time_limit_s: float = 15.0, gap: float = 1e-4) -> dict[str, Any]:
    """One signal level: fits and test-split results (see the module docstring)."""
    records, vectors = synthetic_records(n_tasks, seed=seed, signal=signal)
    market = Market.from_records(records)
    store = EmbeddingStore()
    store.put(market.task_ids, market.texts, vectors)
    dev, test = market.indices("dev"), market.indices("test")
    z_test, _ = outcome_regret(market.subset(test))
    row: dict[str, Any] = {"signal": signal, "seed": seed, "tasks": n_tasks, "routers": {}, "fits": {}}
    for name, router in (("largest", SingleAgentRouter(market.agents[market.largest])), ("knn", KNNRouter(store).fit(market, dev)),
                         ("oracle", OracleRouter())):
        out = evaluate(router, market, test)
        row["routers"][name] = _point(out.passed, out.cost)
    for obj in objectives:
        start = time.perf_counter()
        try:
            fit = fit_weights(market, objective=obj, time_limit_s=time_limit_s, gap=gap, evaluate=False)
        except FitError as exc:
            row["fits"][obj] = {"error": str(exc)}
            continue
        out = evaluate(AuctionRouter(fit.weights), market, test)
        row["routers"][f"sale:{obj}"] = {**_point(out.passed, out.cost),
                                         "test_mean_regret": float(z_test[np.arange(len(test)), out.agent].mean())}
        row["fits"][obj] = {"status": fit.status, "seconds": round(time.perf_counter() - start, 2),
                            "dev_mean_regret": fit.mean_regret, "objective_value": fit.objective_value}
    return row


def run_sweep(signals: Sequence[float] = SIGNALS, *, n_tasks: int = 753, seeds: Sequence[int] = (0,),
              objectives: Sequence[str] = (DEFAULT_OBJECTIVE,), time_limit_s: float = 15.0, gap: float = 1e-4,
              progress: bool = True) -> list[dict[str, Any]]:
    """Every signal x seed point of the sweep."""
    rows = []
    for seed in seeds:
        for q in signals:
            start = time.perf_counter()
            rows.append(sweep_point(q, n_tasks=n_tasks, seed=seed, objectives=objectives, time_limit_s=time_limit_s, gap=gap))
            if progress:
                print(f"  signal {q:g}, seed {seed}: {time.perf_counter() - start:.1f} s", flush=True)
    return rows


def sweep_table(rows: list[dict[str, Any]], objective: str = DEFAULT_OBJECTIVE) -> str:
    """Markdown: per signal (mean over seeds), SALE's pass@1 and cost against the largest agent, kNN and the oracle."""
    sale = f"sale:{objective}"
    lines = [f"SYNTHETIC sweep ({rows[0]['tasks']} tasks, seeds {sorted({r['seed'] for r in rows})}; test split; "
             f"SALE fitted with the {objective} objective)", "",
             "| signal | SALE pass@1 % | SALE $/task | largest pass@1 % | largest $/task | kNN pass@1 % | kNN $/task | "
             "oracle pass@1 % | oracle $/task |", "|---|---|---|---|---|---|---|---|---|"]
    for q in sorted({r["signal"] for r in rows}):
        sel = [r for r in rows if r["signal"] == q]
        cells = []
        for name in (sale, "largest", "knn", "oracle"):
            pts = [r["routers"][name] for r in sel if name in r["routers"]]
            if not pts:
                cells += ["n/a", "n/a"]
                continue
            cells += [f"{100 * np.mean([p['pass_at_1'] for p in pts]):.1f}", f"{np.mean([p['cost_per_task'] for p in pts]):.5f}"]
        lines.append(f"| {q:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def objective_table(rows: list[dict[str, Any]], objectives: Sequence[str]) -> str:
    """Markdown: every objective's test pass@1, cost and mean regret, averaged over the sweep's points."""
    lines = ["| objective | test pass@1 % | $/task | test mean regret | fit seconds (mean) |", "|---|---|---|---|---|"]
    for obj in objectives:
        pts = [r["routers"][f"sale:{obj}"] for r in rows if f"sale:{obj}" in r["routers"]]
        secs = [r["fits"][obj]["seconds"] for r in rows if "seconds" in r["fits"].get(obj, {})]
        if pts:
            lines.append(f"| {obj} | {100 * np.mean([p['pass_at_1'] for p in pts]):.2f} | "
                         f"{np.mean([p['cost_per_task'] for p in pts]):.5f} | {np.mean([p['test_mean_regret'] for p in pts]):.4f} | "
                         f"{np.mean(secs):.1f} |")
    return "\n".join(lines) + "\n"


def sweep_figure(rows: list[dict[str, Any]], path: str | Path, objective: str = DEFAULT_OBJECTIVE) -> Path:
    """pass@1 and dollars per task of SALE, the largest agent, kNN and the oracle against the signal."""
    import matplotlib  # optional extra: bench (matplotlib)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # optional extra: bench; after use("Agg")

    qs = sorted({r["signal"] for r in rows})
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, label in ((f"sale:{objective}", f"SALE ({objective} fit)"), ("largest", "largest agent"), ("knn", "kNN"),
                        ("oracle", "oracle")):
        for ax, key, scale in ((axes[0], "pass_at_1", 100.0), (axes[1], "cost_per_task", 1.0)):
            ys = [scale * np.mean([r["routers"][name][key] for r in rows if r["signal"] == q and name in r["routers"]]) for q in qs]
            ax.plot(qs, ys, "o-", label=label)
    axes[0].set_ylabel("pass@1 (%), test split")
    axes[1].set_ylabel("dollars per task, test split")
    for ax in axes:
        ax.set_xlabel("signal Q: corr(entropy, jury; own outcome)")
        ax.set_title("SYNTHETIC market: " + ("pass@1" if ax is axes[0] else "cost") + " vs signal", fontsize=10)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return p


def write_sweep(rows: list[dict[str, Any]], out_dir: str | Path, objectives: Sequence[str], seconds: float) -> list[Path]:
    """``sweep.json``, ``sweep.md`` and ``signal_sweep.png`` in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    main = objectives[0]
    (out / "sweep.json").write_text(json.dumps({"synthetic": True, "seconds": round(seconds, 1), "objectives": list(objectives),
                                                "rows": rows}, indent=1) + "\n")
    text = "# SYNTHETIC signal sweep\n\n" + sweep_table(rows, main) + "\n" + objective_table(rows, objectives)
    text += f"\nWall time: {seconds:.0f} s.\n"
    (out / "sweep.md").write_text(text)
    return [out / "sweep.json", out / "sweep.md", sweep_figure(rows, out / "signal_sweep.png", main)]

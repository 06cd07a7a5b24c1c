"""Live runs in the report: SALE with its memory over seeded task orders, with intervals across orders.

Per order (``sale bench live --orders K``): pass@1, dollars, the largest agent's share of
wins, the small agents' share of wins as tasks arrive, how often a refined bid won, and
what those wins saved. The saving of a refined win is an estimate at equal execution
length: the execution's tokens priced at the provisional winner's prices minus at the
refined winner's, less the refinement calls' dollars (the provisional winner never ran).
Across orders: the mean and a 95% t-interval (``K >= 2``). Beside a market log, the same
tasks' replayed SALE (no memory) and largest agent are shown for comparison.

A live record of the first format (agents as bare names, no ``order``) reads as order 0,
its prices taken from the market log when one is given.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sale_graph.bench.market.market import Market
from sale_graph.bench.report.stats import mean_interval
from sale_graph.bench.routers.base import Replay


def _prices(rec: dict[str, Any], market: Market | None) -> dict[str, tuple[float, float]]:
    agents = rec.get("agents") or []
    if agents and isinstance(agents[0], dict):
        return {a["name"]: (float(a["price_input"]), float(a["price_output"])) for a in agents}
    if market is not None:
        return {a: (float(pi), float(po)) for a, pi, po in zip(market.agents, market.price_in, market.price_out, strict=True)}
    return {}


def refined_saving(rec: dict[str, Any], prices: dict[str, tuple[float, float]]) -> float | None:
    """Estimated dollars a refined win saved (see the module docstring); ``None`` when the prices are unknown."""
    win, prov = rec.get("winner"), rec.get("provisional_winner")
    if win not in prices or prov not in prices:
        return None
    ex = (rec.get("by_phase") or {}).get("execute", {})
    tin, tout = ex.get("input_tokens", 0), ex.get("output_tokens", 0)
    saved = (tin * (prices[prov][0] - prices[win][0]) + tout * (prices[prov][1] - prices[win][1])) / 1e6
    return float(saved - (rec.get("by_phase") or {}).get("refine", {}).get("cost_usd", 0.0))


def _order_stats(recs: list[dict[str, Any]], prices: dict[str, tuple[float, float]]) -> dict[str, Any]:
    recs = sorted(recs, key=lambda r: r.get("position", 0))
    largest = max(prices, key=lambda a: (prices[a][1], a)) if prices else None
    winners = [r.get("winner") for r in recs]
    refined = [r for r in recs if r.get("winner_round") == "refined"]
    savings = [s for s in (refined_saving(r, prices) for r in refined) if s is not None]
    small = np.array([w != largest for w in winners], dtype=float) if largest else np.full(len(recs), np.nan)
    return {
        "tasks": len(recs), "pass_at_1": float(np.mean([r["passed"] for r in recs])),
        "cost_usd": float(sum(r.get("cost_usd", 0.0) for r in recs)),
        "largest_share": float(np.mean([w == largest for w in winners])) if largest else None,
        "refined_wins": len(refined), "refined_win_rate": len(refined) / len(recs),
        "refined_pass_at_1": float(np.mean([r["passed"] for r in refined])) if refined else None,
        "refined_saving_usd": float(sum(savings)) if savings else 0.0,
        "curve": (np.cumsum(small) / np.arange(1, len(recs) + 1)).tolist(),
    }


def _vs_replay(records: list[dict[str, Any]], market: Market, outcomes: dict[str, Replay]) -> dict[str, Any]:
    """Replayed SALE and the largest agent on the tasks the live runs covered (ids found in the market log)."""
    ids = {str(r["task"]["id"]) for r in records}
    out: dict[str, Any] = {}
    for name in ("sale", f"agent:{market.agents[market.largest]}"):
        o = outcomes.get(name)
        if o is None:
            continue
        sel = np.array([k for k, t in enumerate(o.idx) if market.task_ids[t] in ids], dtype=int)
        if sel.size:
            out[name] = {"tasks": int(sel.size), "pass_at_1": float(o.passed[sel].mean()), "cost_usd": float(o.cost[sel].sum())}
    return out


def live_section(records: list[dict[str, Any]], market: Market | None = None,
                 outcomes: dict[str, Replay] | None = None) -> dict[str, Any]:
    """The report's live block: per-order figures, their means and intervals, and the small-share curves."""
    by_order: dict[int, list[dict[str, Any]]] = {}
    for r in records:
        by_order.setdefault(int(r.get("order", 0)), []).append(r)
    prices = _prices(records[0], market)
    per = {k: _order_stats(recs, prices) for k, recs in sorted(by_order.items())}
    keys = ("pass_at_1", "cost_usd", "largest_share", "refined_win_rate", "refined_saving_usd")
    shares = {"pass_at_1", "largest_share", "refined_win_rate"}
    summary = {k: mean_interval([s[k] for s in per.values() if s[k] is not None], (0.0, 1.0) if k in shares else None)
               for k in keys}
    length = max(len(s["curve"]) for s in per.values())
    curves = [s["curve"] + [float("nan")] * (length - len(s["curve"])) for s in per.values()]
    section: dict[str, Any] = {
        "orders": len(per), "seeds": sorted({r.get("seed") for r in records if r.get("seed") is not None}),
        "per_order": {str(k): {kk: vv for kk, vv in s.items() if kk != "curve"} for k, s in per.items()},
        "summary": summary, "curves": curves, "largest_agent": max(prices, key=lambda a: (prices[a][1], a)) if prices else None,
        "uneven_orders": len({s["tasks"] for s in per.values()}) > 1,
    }
    if market is not None and outcomes:
        section["vs_replay"] = _vs_replay(records, market, outcomes)
    return section


def _fmt(stat: dict[str, Any], pct: bool = False) -> str:
    if stat["mean"] is None:
        return "n/a"
    f = (lambda v: f"{100 * v:.1f}%") if pct else (lambda v: f"{v:.4g}")
    ci = stat.get("ci95")
    return f"{f(stat['mean'])} [{f(ci[0])}, {f(ci[1])}]" if ci else f"{f(stat['mean'])} (one order: no interval)"


def live_markdown(live: dict[str, Any]) -> list[str]:
    """The live section of ``summary.md``."""
    s = live["summary"]
    lines = [f"## SALE live, with memory ({live['orders']} task orders, seeds {live['seeds']})", "",
             "Mean over orders [95% t-interval across orders]; each order started with a fresh memory.", "",
             "| metric | value |", "|---|---|",
             f"| pass@1 | {_fmt(s['pass_at_1'], pct=True)} |", f"| cost $ (per order) | {_fmt(s['cost_usd'])} |",
             f"| largest agent's share of wins ({live['largest_agent']}) | {_fmt(s['largest_share'], pct=True)} |",
             f"| refined bid won | {_fmt(s['refined_win_rate'], pct=True)} of tasks |",
             f"| saved by refined wins $ (estimate, per order) | {_fmt(s['refined_saving_usd'])} |", ""]
    lines += ["| order | tasks | pass@1 % | cost $ | largest share % | refined wins | their pass@1 % | saved $ |",
              "|---|---|---|---|---|---|---|---|"]
    for k, o in live["per_order"].items():
        rp = "n/a" if o["refined_pass_at_1"] is None else f"{100 * o['refined_pass_at_1']:.1f}"
        ls = "n/a" if o["largest_share"] is None else f"{100 * o['largest_share']:.1f}"
        lines.append(f"| {k} | {o['tasks']} | {100 * o['pass_at_1']:.1f} | {o['cost_usd']:.4g} | {ls} | {o['refined_wins']} | "
                     f"{rp} | {o['refined_saving_usd']:.3g} |")
    if live.get("uneven_orders"):
        lines += ["", "Orders cover different numbers of tasks (an interrupted run): compare them with care."]
    if live.get("vs_replay"):
        lines += ["", "On the same tasks, replayed (no memory): " + "; ".join(
            f"{name}: pass@1 {100 * v['pass_at_1']:.1f}%, ${v['cost_usd']:.4g} ({v['tasks']} tasks)"
            for name, v in live["vs_replay"].items()) + ". The live cost is per order, the replayed one over the same tasks once."]
    return lines + [""]

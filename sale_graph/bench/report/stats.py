"""Per-group metrics with bootstrap intervals, and paired differences between routers.

95% intervals: percentile bootstrap over tasks (the same resamples for every router of a
group); differences between two routers use the paired bootstrap, and a difference whose
interval contains 0 is reported as within noise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sale_graph.bench.routers.base import Replay


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
        """The fields of ``results.json``."""
        return {"pass_at_1": self.pass_at_1, "cost_usd": self.cost_usd, "dollars_per_mtok": self.dollars_per_mtok,
                "largest_share": self.largest_share, "n": self.n}

    def full(self) -> dict[str, Any]:
        """The fields of ``report.json``: the short ones, intervals and auction shares."""
        return {**self.short(), "pass_at_1_ci95": list(self.pass_ci), "cost_usd_ci95": list(self.cost_ci),
                "auction_token_share": self.auction_token_share, "auction_latency_share": self.auction_latency_share}


def ratio(a: float, b: float) -> float:
    """``a / b``, 0 when ``b`` is not positive."""
    return float(a / b) if b > 0 else 0.0


def _ci(samples: np.ndarray) -> tuple[float, float]:
    lo, hi = np.percentile(samples, [2.5, 97.5])
    return float(lo), float(hi)


def group_stats(out: Replay, sel: np.ndarray, boot: np.ndarray, largest: int) -> GroupStats:
    """Metrics of the tasks ``sel`` (positions in ``out``) with bootstrap resamples ``boot`` (positions into ``sel``)."""
    passed = out.passed[sel].astype(float)
    cost = out.cost[sel]
    return GroupStats(
        n=int(len(sel)), pass_at_1=float(passed.mean()), pass_ci=_ci(passed[boot].mean(axis=1)),
        cost_usd=float(cost.sum()), cost_ci=_ci(cost[boot].sum(axis=1)),
        dollars_per_mtok=ratio(cost.sum() * 1e6, out.tokens[sel].sum()),
        largest_share=float(np.mean(out.agent[sel] == largest)),
        auction_token_share=ratio(out.overhead_tokens[sel].sum(), out.tokens[sel].sum()),
        auction_latency_share=ratio(out.overhead_seconds[sel].sum(), out.seconds[sel].sum()),
    )


def paired_diff(a: Replay, b: Replay, sel: np.ndarray, boot: np.ndarray) -> dict[str, Any]:
    """Paired bootstrap of ``a - b`` in pass@1 and in total cost on the same tasks; ``within_noise`` if the CI holds 0."""
    dp = a.passed[sel].astype(float) - b.passed[sel].astype(float)
    dc = a.cost[sel] - b.cost[sel]
    pci, cci = _ci(dp[boot].mean(axis=1)), _ci(dc[boot].sum(axis=1))
    return {"pass_diff": float(dp.mean()), "pass_diff_ci95": list(pci), "pass_within_noise": pci[0] <= 0 <= pci[1],
            "cost_diff": float(dc.sum()), "cost_diff_ci95": list(cci), "cost_within_noise": cci[0] <= 0 <= cci[1],
            "cost_ratio": ratio(a.cost[sel].sum(), b.cost[sel].sum())}


def task_groups(domains: np.ndarray, bins: np.ndarray, labels: Sequence[str]) -> dict[tuple[str, str], np.ndarray]:
    """Positions of every (domain or ``all``, bin label or ``all``) group that has tasks."""
    groups: dict[tuple[str, str], np.ndarray] = {}
    for dom in ["all", *sorted(set(domains.tolist()))]:
        dmask = np.ones(len(domains), dtype=bool) if dom == "all" else domains == dom
        groups[(dom, "all")] = np.flatnonzero(dmask)
        for b, label in enumerate(labels):
            sel = np.flatnonzero(dmask & (bins == b))
            if len(sel):
                groups[(dom, label)] = sel
    return groups


def fmt_ci(v: float, ci: tuple[float, float] | list[float], pct: bool = True) -> str:
    """``72.5 [68.1, 76.9]`` (percent) or ``0.0123 [0.011, 0.013]``."""
    if pct:
        return f"{100 * v:.1f} [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"
    return f"{v:.4g} [{ci[0]:.3g}, {ci[1]:.3g}]"


def mean_interval(values: Sequence[float], bounds: tuple[float, float] | None = None) -> dict[str, Any]:
    """Mean and 95% t-interval across independent runs (e.g. task orders); no interval from one run.

    ``bounds`` clips the interval to the quantity's range (e.g. ``(0, 1)`` for a share).
    """
    from scipy import stats  # optional extra: bench (scipy)

    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        return {"mean": None, "ci95": None, "n": 0}
    mean = float(arr.mean())
    if arr.size < 2:
        return {"mean": mean, "ci95": None, "n": 1}
    half = float(stats.t.ppf(0.975, arr.size - 1) * arr.std(ddof=1) / np.sqrt(arr.size))
    lo, hi = mean - half, mean + half
    if bounds is not None:
        lo, hi = max(bounds[0], lo), min(bounds[1], hi)
    return {"mean": mean, "ci95": [lo, hi], "n": int(arr.size)}

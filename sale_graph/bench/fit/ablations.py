"""Refitted ablations: one weight fit per SALE variant, stored in the weights file beside SALE's own.

``sale bench fit`` fits SALE (variant ``full``) and, unless ``--no-ablations``, every
variant of :data:`sale_graph.bench.routers.variants.ABLATIONS` on the same dev tasks with the
same objective (``mean-objective`` with the mean), each with its removed term fixed
at zero. The weights file keeps SALE's weights at the top (``sale run --weights``
reads them) and the ablations in ``meta.ablations``::

    {"w_c": ..., "w_h": ..., "jury": {...},
     "meta": {"objective": "cvar", ..., "fit": {...},
              "ablations": {"no-cost": {"w_c": 0.0, "w_h": ..., "jury": {...}, "meta": {...}}, ...}}}

:func:`load_sale_weights` reads such a file back for the report.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sale_graph.bench.fit.programme import FitError, NoSignalError, build_features
from sale_graph.bench.fit.weights import FitResult, fit_weights
from sale_graph.bench.market.market import Market
from sale_graph.bench.routers.auction import SaleWeights
from sale_graph.bench.routers.variants import ABLATIONS, FULL, Variant
from sale_graph.weights import Weights, load_weights, weights_from_dict


def flat_fit(market: Market, v: Variant, split: str, reason: str) -> dict[str, Any]:
    """An ablation whose rule has no dev task where its choice changes the regret: every allowed weight vector is optimal.

    The weights are spread evenly over the weights the variant leaves free, and the file says why.
    """
    dev = market.subset(market.indices(split))
    feats = build_features(dev, v)
    free = feats.allowed.astype(float) / feats.allowed.sum()
    w = Weights(w_c=float(free[0] / feats.c_max), w_h=float(free[1]), jury={a: float(x) for a, x in zip(dev.agents, free[2:], strict=True)})
    meta = {"variant": v.name, "removes": v.removes, "status": "no signal: every allowed weight vector is optimal on dev",
            "reason": reason, "price_ref": feats.price_ref, "const_tokens": feats.const_tokens}
    return {**w.to_dict(), "meta": meta}


def fit_with_ablations(market: Market, *, objective: str, ablations: Sequence[Variant] = ABLATIONS,
                       on_fit: Callable[[str, FitResult], None] | None = None, **kwargs: Any) -> FitResult:
    """Fit SALE and every variant in ``ablations``; the ablations go into ``meta.ablations`` of SALE's result.

    ``kwargs`` are passed to :func:`~sale_graph.bench.fit.weights.fit_weights` for every fit.
    ``on_fit(name, result)`` is called after each fit (progress).
    """
    full = fit_weights(market, objective=objective, variant=FULL, **kwargs)
    if on_fit is not None:
        on_fit("full", full)
    found: dict[str, Any] = {}
    for v in ablations:
        try:
            res = fit_weights(market, objective=v.objective or objective, variant=v, **kwargs)
        except NoSignalError as exc:  # the ablated rule's picks never change the regret: any weights do
            found[v.name] = flat_fit(market, v, kwargs.get("split", "dev"), str(exc))
            continue
        except FitError as exc:  # e.g. no weights let the ablated rule pick some agent: say so, go on
            found[v.name] = {"error": str(exc), "removes": v.removes}
            continue
        if on_fit is not None:
            on_fit(v.name, res)
        meta = {k: val for k, val in res.meta.items() if k != "fit"}
        found[v.name] = {**res.weights.to_dict(), "meta": meta}
    full.meta["ablations"] = found
    return full


def load_sale_weights(path: str | Path | None) -> SaleWeights:
    """SALE's weights and the refitted ablations of a weights file (defaults, no ablations, for ``None``)."""
    if path is None:
        return SaleWeights()
    weights = load_weights(path)
    p = Path(path).expanduser()
    meta: dict[str, Any] = {}
    if p.suffix == ".json":
        meta = json.loads(p.read_text(encoding="utf-8")).get("meta") or {}
    ablations = {}
    for name, entry in (meta.get("ablations") or {}).items():
        if isinstance(entry, dict) and "error" not in entry:
            w = weights_from_dict({k: entry[k] for k in ("w_c", "w_h", "jury") if k in entry}, source=f"{p} ({name})")
            ablations[name] = (w, entry.get("meta") or {})
    return SaleWeights(weights, ablations, meta)

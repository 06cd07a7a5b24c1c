"""Auction weights ``w = (w_c, w_h, w_1..w_n)``: defaults, files, and the pool-scaled cost weight.

Defaults, used when no weights file is given (or a file leaves the key out):

* ``w_c``: scaled to the pool's own prices (:func:`pool_cost_weight`): the dearest
  agent's reference bid (:data:`REFERENCE_BID_TOKENS` tokens, the length the bid prompt
  asks for) costs :data:`COST_SHARE` of the value range ``w_h + sum_j w_j``. The same
  rule fits a $0.05-$0.36 pool and a $0.05-$10 one: at equal judgement the cheaper
  agent wins, and the dearest agent wins when the jury rates its plan about 1.5
  points (of 5) higher than a far cheaper agent's plan of the same length. A weights
  file's ``w_c`` is used as given.
* ``w_h = 0.5``: entropy counts half as much as the whole jury.
* jury weights: every judge equal, summing to 1, so the jury term is the mean
  ``gamma`` (a judge without an explicit weight gets ``default_jury_weight``).

A weights file is JSON or TOML (``sale calibrate`` and ``sale bench fit`` write one)::

    w_c = 0.01
    w_h = 0.5
    [jury]
    "qwen3-4b" = 0.2
    "qwen3-32b" = 0.4
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sale_graph.errors import WeightsError

COST_SHARE = 0.2
"""Pool-scaled default: the dearest agent's reference bid costs this share of the value range."""
REFERENCE_BID_TOKENS = 130
"""The reference bid's length in tokens: the bid prompt asks for about 100 words."""


def pool_cost_weight(prices: Mapping[str, float], value_range: float, *, share: float = COST_SHARE,
                     tokens: int = REFERENCE_BID_TOKENS) -> tuple[float, str]:
    """The default ``w_c`` for a pool, and the rule that gave it (one line, recorded in the run's state).

    ``w_c = share * value_range / (max_price * tokens)``: a ``tokens``-long bid by the
    dearest agent then costs ``share`` of the value range (``w_h + sum_j w_j``, the value
    of a bid with ``H = 1`` scored 5/5 by every judge), whatever the pool's price scale.
    Every other agent's bid of the same length costs less in proportion to its price. A
    pool whose agents are all free (price 0), or weights whose value range is 0, get
    ``w_c = 0``: the cost term has nothing to weigh.

    Args:
        prices: agent name -> price in dollars per 1M output tokens (``AgentSpec.price``).
        value_range: ``w_h`` plus the sum of the jury weights.
        share: the share of the value range the dearest agent's reference bid costs.
        tokens: the reference bid's length in tokens.
    """
    if not prices:
        raise WeightsError("cannot scale the cost weight to an empty pool")
    dearest = max(sorted(prices), key=lambda name: prices[name])
    top = float(prices[dearest])
    if top <= 0 or value_range <= 0:
        why = "every agent's price is 0" if top <= 0 else "the value weights are all 0"
        return 0.0, f"pool-scaled: {why}, so no cost term (w_c = 0)"
    w_c = share * value_range / (top * tokens)
    rule = (f"pool-scaled: w_c = {w_c:.4g}, so a {tokens}-token bid by the dearest agent {dearest} "
            f"(${top:g}/1M) costs {share:.0%} of the value range {value_range:g}")
    return w_c, rule


@dataclass(frozen=True)
class Weights:
    """The auction weights. ``jury`` maps judge name to weight; absent judges share ``default_jury_weight``.

    ``w_c = None`` (the default) means "scaled to the pool": :meth:`for_prices` fills it in
    with :func:`pool_cost_weight` once the pool is known, and records the rule in
    ``cost_rule``; a run's context does that when it resolves its weights.
    """

    w_c: float | None = None
    w_h: float = 0.5
    jury: dict[str, float] = field(default_factory=dict)
    default_jury_weight: float | None = None
    source: str = "defaults"
    cost_rule: str = ""
    cost_from_pool: bool = False

    def __post_init__(self) -> None:
        values = (("w_h", self.w_h), *self.jury.items(), *((("w_c", self.w_c),) if self.w_c is not None else ()))
        for name, v in values:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise WeightsError(f"{self.source}: weight {name!r} must be a finite non-negative number, got {v!r}")

    def check_judges(self, judges: Sequence[str]) -> None:
        """Fail when a file names some judges but not these: a judge silently weighted 1/n is a wrong result.

        A weights file with a ``jury`` table must name every agent of the pool, or set
        ``default_jury_weight`` to say explicitly what the others get. Weights with no
        ``jury`` table (the defaults) weigh every judge equally.
        """
        missing = [j for j in judges if j not in self.jury]
        if self.jury and missing and self.default_jury_weight is None:
            raise WeightsError(
                f"{self.source}: the jury weights name {', '.join(sorted(self.jury))} but not pool agent(s) "
                f"{', '.join(missing)}; add them to 'jury' (refit with `sale bench fit` on this pool), or set "
                "default_jury_weight to give unnamed judges that weight"
            )

    def jury_weights(self, judges: Sequence[str]) -> list[float]:
        """Weights for these judges in order; unnamed judges get the default (``1/len(judges)`` if unset).

        A live auction first checks that a weights file names every judge (:meth:`check_judges`).
        """
        if not judges:
            return []
        default = self.default_jury_weight if self.default_jury_weight is not None else 1.0 / len(judges)
        return [float(self.jury.get(j, default)) for j in judges]

    def value_range(self, judges: Sequence[str]) -> float:
        """The most a bid's value can be with these judges: ``w_h + sum_j w_j`` (``H = 1``, every judge 5/5)."""
        return float(self.w_h) + float(sum(self.jury_weights(judges)))

    def for_prices(self, prices: Mapping[str, float]) -> Weights:
        """These weights with a concrete ``w_c`` for a pool (agent name -> price per 1M tokens) and its rule.

        An explicit ``w_c`` is kept as given; a missing one (or one scaled to another
        pool) is scaled to this pool's prices with :func:`pool_cost_weight`, the jury
        being the whole pool.
        """
        if self.w_c is not None and not self.cost_from_pool:
            if self.cost_rule:
                return self
            return replace(self, cost_rule=f"explicit: w_c = {self.w_c:g} as given by {self.source}")
        w_c, rule = pool_cost_weight(prices, self.value_range(list(prices)))
        return replace(self, w_c=w_c, cost_rule=rule, cost_from_pool=True)

    @property
    def cost_weight(self) -> float:
        """The concrete ``w_c``; weights scaled to the pool must go through :meth:`for_prices` first."""
        if self.w_c is None:
            raise WeightsError(f"{self.source}: w_c is scaled to the pool; call for_prices(prices) with the pool's prices first")
        return float(self.w_c)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict that :func:`weights_from_dict` reads back (no ``w_c`` when it is scaled to the pool)."""
        out: dict[str, Any] = {"w_h": self.w_h, "jury": dict(self.jury)}
        if self.w_c is not None:
            out = {"w_c": self.w_c, **out}
        if self.default_jury_weight is not None:
            out["default_jury_weight"] = self.default_jury_weight
        return out

    def save(self, path: str | Path) -> Path:
        """Write the weights as JSON."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return p


DEFAULT_WEIGHTS = Weights()

_KEYS = {"w_c", "w_h", "jury", "default_jury_weight", "meta"}


def weights_from_dict(data: dict[str, Any], source: str = "<dict>") -> Weights:
    """Validate a parsed weights mapping (extra ``meta`` is allowed and ignored)."""
    if not isinstance(data, dict):
        raise WeightsError(f"{source}: weights must be a table/object")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise WeightsError(f"{source}: unknown key(s) {', '.join(unknown)}; allowed: w_c, w_h, jury, default_jury_weight")
    jury = data.get("jury", {}) or {}
    if not isinstance(jury, dict):
        raise WeightsError(f"{source}: 'jury' must map judge names to weights")
    return Weights(
        w_c=data.get("w_c"),
        w_h=data.get("w_h", DEFAULT_WEIGHTS.w_h),
        jury={str(k): v for k, v in jury.items()},
        default_jury_weight=data.get("default_jury_weight"),
        source=source,
    )


def load_weights(path: str | Path | None) -> Weights:
    """Load weights from a JSON or TOML file; ``None`` gives the documented defaults."""
    if path is None:
        return DEFAULT_WEIGHTS
    p = Path(path).expanduser()
    if not p.is_file():
        raise WeightsError(f"weights file {str(p)!r} does not exist (write one with `sale bench fit` or by hand)")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise WeightsError(f"weights file {str(p)!r} cannot be read: {exc}") from exc
    try:
        data = tomllib.loads(text) if p.suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise WeightsError(f"{p}: cannot parse weights: {exc}") from exc
    return weights_from_dict(data, source=str(p))

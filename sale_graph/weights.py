"""Auction weights ``w = (w_c, w_h, w_1..w_n)``: defaults, files, and (later) learning.

Defaults, used when no weights file is given:

* ``w_c = 0.01``: with prices in dollars per 1M tokens and strategies of about
  100-200 tokens, ``w_c * price * |s|`` then lies between about 0.05 (a $0.05
  model) and 0.7 (a $0.36 model), the same order as the value term.
* ``w_h = 0.5``: entropy counts half as much as the whole jury.
* jury weights: every judge equal, summing to 1, so the jury term is the mean
  ``gamma`` (a judge without an explicit weight gets ``default_jury_weight``).

A weights file is JSON or TOML::

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
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sale_graph.errors import WeightsError


@dataclass(frozen=True)
class Weights:
    """The auction weights. ``jury`` maps judge name to weight; absent judges share ``default_jury_weight``."""

    w_c: float = 0.01
    w_h: float = 0.5
    jury: dict[str, float] = field(default_factory=dict)
    default_jury_weight: float | None = None
    source: str = "defaults"

    def __post_init__(self) -> None:
        for name, v in (("w_c", self.w_c), ("w_h", self.w_h), *self.jury.items()):
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

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict that :func:`weights_from_dict` reads back."""
        out: dict[str, Any] = {"w_c": self.w_c, "w_h": self.w_h, "jury": dict(self.jury)}
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
        w_c=data.get("w_c", DEFAULT_WEIGHTS.w_c),
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

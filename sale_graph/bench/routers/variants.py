"""SALE and its ablations: what each variant removes, for the weight fit and the replay alike.

Each ablation is *refitted* (``sale bench fit`` fits one weight vector per variant on
the same dev tasks, with the removed term fixed at zero or the removed input made
uninformative) and replayed with the live rule, so the report compares SALE with
the best the auction can do without that term, not with SALE's own weights minus
a term. Names say what is removed:

=================  ==============================================================================
``no-cost``        the whole cost term (``w_c = 0``): bids compete on value alone
``price-blind``    the agent's price: every bid costed at the pool's mean price, so only ``|s|`` counts
``length-blind``   the bid's length: every bid costed at the dev median length, so only the price counts
``no-entropy``     the entropy term (``w_h = 0``)
``no-jury``        the jury (every jury weight 0; votes neither asked for nor paid)
``self-only``      the peers' votes: each bid scored by its own author only (only those votes paid)
``peers-only``     the self-vote: each bid scored by the other judges only (only those votes paid)
``mean-objective`` nothing in the rule: the weights are fitted with the mean objective instead
=================  ==============================================================================
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FEATURES = ("cost", "entropy", "jury")


@dataclass(frozen=True)
class Variant:
    """One SALE variant.

    Attributes:
        name: the router's suffix (``sale:<name>``); ``full`` is SALE itself.
        removes: what is removed, in words (the report prints it).
        zero: feature groups whose weights are fixed at zero (``cost``, ``entropy``, ``jury``).
        cost_mode: ``full`` (``price * |s|``), ``price-blind`` (mean price * ``|s|``) or ``length-blind`` (price * constant).
        jury_mask: which votes count and are paid: ``all``, ``self``, ``peers`` or ``none``.
        objective: the fit objective, ``None`` for the full fit's own.
    """

    name: str
    removes: str
    zero: tuple[str, ...] = ()
    cost_mode: str = "full"
    jury_mask: str = "all"
    objective: str | None = None

    def mask(self, n: int) -> np.ndarray:
        """``mask[i, j]``: whether judge ``j``'s vote on bidder ``i``'s bid is used (and paid)."""
        eye = np.eye(n, dtype=bool)
        return {"none": np.zeros((n, n), dtype=bool), "self": eye, "peers": ~eye}.get(self.jury_mask, np.ones((n, n), dtype=bool))


FULL = Variant("full", "nothing")
ABLATIONS: tuple[Variant, ...] = (
    Variant("no-cost", "the cost term (w_c = 0)", zero=("cost",)),
    Variant("price-blind", "the price in the cost term (every bid costed at the pool's mean price)", cost_mode="price-blind"),
    Variant("length-blind", "the bid length in the cost term (every bid costed at the dev median length)",
            cost_mode="length-blind"),
    Variant("no-entropy", "the entropy term (w_h = 0)", zero=("entropy",)),
    Variant("no-jury", "the jury (no votes asked or paid)", zero=("jury",), jury_mask="none"),
    Variant("self-only", "the peers' votes (each bid judged by its author only)", jury_mask="self"),
    Variant("peers-only", "the self-vote (each bid judged by the other agents only)", jury_mask="peers"),
    Variant("mean-objective", "the min-max part of the fit (weights fitted with the mean objective)", objective="mean"),
)
VARIANTS: dict[str, Variant] = {v.name: v for v in (FULL, *ABLATIONS)}


def variant(name: str) -> Variant:
    """The variant called ``name``; an error listing the known ones otherwise."""
    if name not in VARIANTS:
        raise ValueError(f"unknown SALE variant {name!r}; known: {', '.join(VARIANTS)}")
    return VARIANTS[name]

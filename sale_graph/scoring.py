"""The auction's arithmetic: cost, entropy, jury value and selection.

Pure functions over numbers and numpy arrays, no I/O, so every formula of
docs/method.md can be checked by hand:

* cost        ``C_i = w_c * price(a_i) * |s_i|``  (price in dollars per 1M tokens, ``|s_i|`` in tokens)
* entropy     ``H(s_i)`` in [0, 1], token-level average (see :func:`logprob_entropy`, :func:`text_entropy`)
* jury        ``gamma_j(s_i) = likert_j(s_i) / 5``
* value       ``V_i = w_h * H(s_i) + sum_j w_j * gamma_j(s_i)``
* selection   ``argmin_i (C_i - V_i)``, ties to the cheaper agent, then to the name
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np

LIKERT_MAX = 5.0


def strategy_cost(w_c: float, price: float, n_tokens: int) -> float:
    """``C = w_c * price * |s|``: the bid's cost term.

    ``price`` is the agent's price in dollars per 1M tokens and ``n_tokens`` the
    strategy's length in tokens, a proxy for the execution cost and risk of that
    agent following that plan.
    """
    if n_tokens < 0 or price < 0:
        raise ValueError(f"price and token count must be non-negative, got price={price}, tokens={n_tokens}")
    return float(w_c) * float(price) * float(n_tokens)


def token_entropy(top_logprobs: Sequence[float]) -> float:
    """Normalised entropy of one next-token distribution known through its top-k log-probs.

    The top-k probabilities are completed with one bucket holding the remaining
    mass ``1 - sum(p)`` (when positive), and the entropy is divided by
    ``log(k + 1)``, the most it can be over ``k + 1`` outcomes, so it lies in [0, 1].
    A single alternative (k = 1) is normalised by ``log 2``.
    """
    lps = np.asarray(list(top_logprobs), dtype=float)
    lps = lps[np.isfinite(lps)]
    if lps.size == 0:
        return 0.0
    p = np.exp(lps)
    total = p.sum()
    if total > 1.0:  # rounding in the server: renormalise
        p = p / total
        rest = 0.0
    else:
        rest = 1.0 - total
    dist = np.append(p, rest) if rest > 1e-12 else p
    dist = dist[dist > 0]
    h = float(-(dist * np.log(dist)).sum())
    return min(1.0, max(0.0, h / math.log(lps.size + 1)))


def logprob_entropy(per_token_top_logprobs: Sequence[Sequence[float]]) -> float:
    """``H(s)`` from the model's own distributions: the mean of :func:`token_entropy` over tokens.

    High values mean the model spread probability over alternatives at many
    positions (dense, non-formulaic text); low values mean predictable, redundant
    text. Raises ``ValueError`` on an empty sequence: the caller falls back to
    :func:`text_entropy` and records that it did.
    """
    if len(per_token_top_logprobs) == 0:
        raise ValueError("no token log-probs to compute entropy from")
    return float(np.mean([token_entropy(t) for t in per_token_top_logprobs]))


_WORD = re.compile(r"\w+", re.UNICODE)
TEXT_ENTROPY_REFERENCE_WORDS = 64
"""The text estimate reaches 1.0 only for a bid with at least this many distinct words, evenly used."""


def text_entropy(text: str) -> float:
    """Text-level estimate of ``H(s)`` for bids whose endpoint returns no log-probs.

    The Shannon entropy (nats) of the strategy's word-unigram distribution, divided
    by ``log(64)``, capped at 1. It measures information density like the log-prob
    estimate does (many distinct words, little repetition), and because the scale is
    fixed rather than the text's own length, a degenerate bid cannot score high: a
    one-word bid scores 0, "I don't know." about 0.33, a plan that repeats itself
    little, while a concrete four-step plan of some 60 words scores about 0.9. Bids
    record which estimate they used (``entropy_source``).
    """
    words = [w.lower() for w in _WORD.findall(text)]
    n = len(words)
    if n <= 1:
        return 0.0
    counts = np.array(list(Counter(words).values()), dtype=float)
    p = counts / n
    h = float(-(p * np.log(p)).sum())
    return min(1.0, max(0.0, h / math.log(TEXT_ENTROPY_REFERENCE_WORDS)))


@dataclass(frozen=True)
class EntropyScale:
    """The bids' entropies on one scale, and the policy that put them there (recorded in the state)."""

    values: dict[str, float]
    sources: dict[str, str]
    policy: str


def common_entropy_scale(
    logprob_h: dict[str, float | None], text_h: dict[str, float], reference: Collection[str] | None = None
) -> EntropyScale:
    """Put every bid's ``H`` on one scale when some endpoints return log-probs and some do not.

    ``logprob_h`` maps a bid key to its log-prob entropy (``None`` without log-probs),
    ``text_h`` to its text estimate. The scale is fixed by the ``reference`` bids
    (default: all of them; the auction passes its original round):

    * every reference bid has log-probs: they are kept as they are, and a later bid
      without them is put on their scale as below;
    * none has: the text estimate for every bid (a later bid's log-probs included),
      so all bids stay on one scale;
    * mixed: bids with log-probs keep them; the others take their text estimate
      times ``mean(H_logprob) / mean(H_text)`` over the reference bids that have
      both, capped at 1, so neither kind is favoured by its scale and no model's own
      distribution is thrown away.

    Because only the reference fixes the factor, a bid's entropy never changes
    when other bids (a refinement round) join the table.
    """
    keys = list(logprob_h)
    ref = [k for k in keys if reference is None or k in reference] or keys
    have = [k for k in ref if logprob_h[k] is not None]
    if not have:
        policy = "text" if all(v is None for v in logprob_h.values()) else (
            "text (the original round returned no log-probs, so every bid is on the text scale)")
        return EntropyScale({k: text_h[k] for k in keys}, dict.fromkeys(keys, "text"), policy)
    mean_lp = float(np.mean([logprob_h[k] for k in have]))
    mean_text = float(np.mean([text_h[k] for k in have]))
    scale = mean_lp / mean_text if mean_text > 0 else 1.0
    values: dict[str, float] = {}
    sources: dict[str, str] = {}
    for key, lp in logprob_h.items():
        if lp is not None:
            values[key], sources[key] = float(lp), "logprobs"
        else:
            values[key], sources[key] = min(1.0, text_h[key] * scale), "text-rescaled"
    rescaled = sorted(k for k, src in sources.items() if src == "text-rescaled")
    if not rescaled:
        return EntropyScale(values, sources, "logprobs")
    basis = f"{len(have)} bid(s) with both" if reference is None else f"{len(have)} bid(s) of the original round with both"
    policy = (f"mixed: log-prob entropy where returned; text estimate x{scale:.3f} for {', '.join(rescaled)} "
              f"(scale = mean log-prob H / mean text H over the {basis})")
    return EntropyScale(values, sources, policy)


def quorum_met(answered: int, judges: int, quorum: float) -> bool:
    """Whether ``answered`` of ``judges`` is strictly more than the ``quorum`` share (default: a majority)."""
    return judges > 0 and answered > quorum * judges


def jury_gamma(likert: float) -> float:
    """``gamma = likert / 5``; raises ``ValueError`` outside the 0-5 scale (the caller marks it missing)."""
    if not (isinstance(likert, (int, float)) and math.isfinite(likert)) or not 0 <= likert <= LIKERT_MAX:
        raise ValueError(f"jury score {likert!r} is outside the 0-5 Likert scale")
    return float(likert) / LIKERT_MAX


def strategy_value(entropy: float, gammas: Sequence[float | None], w_h: float, w_jury: Sequence[float]) -> float:
    """``V = w_h * H + sum_j w_j * gamma_j`` over the judges that answered.

    ``gammas[j]`` is ``None`` (or NaN) for a judge whose score is missing. The
    answering judges' weights are rescaled so they carry the whole jury weight
    ``sum_j w_j``: a missing judge neither counts as 0 nor changes the scale of
    the value. With no judge answering, the jury term is 0 and the caller
    records that the value rests on entropy alone.
    """
    g = np.array([np.nan if x is None else float(x) for x in gammas], dtype=float)
    w = np.asarray(w_jury, dtype=float)
    if g.shape != w.shape:
        raise ValueError(f"{g.size} jury scores but {w.size} jury weights")
    present = np.isfinite(g)
    jury_term = 0.0
    if present.any():
        w_present = w[present].sum()
        if w_present > 0:
            jury_term = float((w[present] * g[present]).sum() * (w.sum() / w_present))
    return float(w_h) * float(entropy) + jury_term


@dataclass(frozen=True)
class Selection:
    """The winner of one selection round and by how much it won."""

    index: int
    net: float
    margin: float
    runner_up: int | None


def select_winner(costs: Sequence[float], values: Sequence[float], prices: Sequence[float], names: Sequence[str]) -> Selection:
    """``argmin_i (C_i - V_i)``; ties go to the cheaper agent, then to the name (deterministic).

    ``margin`` is the runner-up's net minus the winner's (0 with one bid); ties
    are judged to 1e-12 so float noise does not decide between equal bids.
    """
    n = len(costs)
    if n == 0 or not (len(values) == len(prices) == len(names) == n):
        raise ValueError("select_winner needs equally long, non-empty costs, values, prices and names")
    net = np.asarray(costs, dtype=float) - np.asarray(values, dtype=float)
    order = sorted(range(n), key=lambda i: (round(float(net[i]), 12), prices[i], names[i]))
    best = order[0]
    runner = order[1] if n > 1 else None
    margin = float(net[runner] - net[best]) if runner is not None else 0.0
    return Selection(index=best, net=float(net[best]), margin=margin, runner_up=runner)

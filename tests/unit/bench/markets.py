"""Small constructed markets whose fits, routers and reports are known by hand."""

from __future__ import annotations

from typing import Any

A, B = "small", "large"


def record(tid: str, passed: dict[str, bool], exec_cost: dict[str, float], judge_small: dict[str, float],
           split: str = "dev", tokens: int = 10, bin_: int = 0, entropy: dict[str, float] | None = None,
           plain: bool = False) -> dict[str, Any]:
    """Two agents (small $1, large $2 per 1M), equal bid lengths; only judge ``small`` scores (judge ``large`` gives 0).

    With zero entropy the rule is a threshold on the jury gap ``d = g_large - g_small``: large wins
    iff ``w_jury[small] * d > 0.5 * w~_c + delta`` (the cost feature is 0.5 for small, 1.0 for large).
    """
    ent = entropy or {A: 0.0, B: 0.0}
    agents = [{"name": A, "model": A, "price_input": 1.0, "price_output": 1.0},
              {"name": B, "model": B, "price_input": 2.0, "price_output": 2.0}]
    bids = [{"agent": a, "round": "original", "strategy": f"plan of {a}", "tokens": tokens, "entropy": ent[a],
             "entropy_source": "text", "status": "ok", "seconds": 0.1, "input_tokens": 5, "output_tokens": tokens,
             "cost_usd": 1e-6} for a in (A, B)]
    jury = []
    for bidder in (A, B):
        jury.append({"judge": A, "bidder": bidder, "round": "original", "likert": 5 * judge_small[bidder],
                     "gamma": judge_small[bidder], "status": "ok", "reason": "ok", "raw": "", "cost_usd": 0.0})
        jury.append({"judge": B, "bidder": bidder, "round": "original", "likert": 0.0, "gamma": 0.0,
                     "status": "ok", "reason": "ok", "raw": "", "cost_usd": 0.0})
    execs = [{"agent": a, "status": "completed", "passed": passed[a], "cost_usd": exec_cost[a], "input_tokens": 10,
              "output_tokens": 10, "seconds": 1.0} for a in (A, B)]
    rec: dict[str, Any] = {"task": {"id": tid, "domain": "search", "text": tid, "bin": bin_, "bin_source": "proxy:test",
                                    "split": split, "source": f"test bin {bin_}"},
                           "agents": agents, "bids": bids, "jury": jury, "executions": execs}
    if plain:
        rec["plain_executions"] = [dict(e) for e in execs]
    return rec


BOTH = {A: True, B: True}
ONLY_LARGE = {A: False, B: True}
COST = {A: 1.0, B: 2.0}  # cost scale 2: a pass costs u = 0.5 (small) or 1.0 (large); a failure u = 2


def objectives_market() -> list[dict[str, Any]]:
    """Three jury gaps, so three threshold selections (large on none, on X, on X and Y, on all).

    X (d = 0.8, bin 0): 4 tasks, both pass (large's regret 0.5 each).
    Y (d = 0.5, bin 1): 1 task only large passes (small's regret 1.0), 3 tasks both pass.
    Z (d = 0.2, bin 2): 2 tasks, both pass.
    Per selection, the regrets (X x4 | Y x4 | Z x2):
      none:  0 0 0 0 | 1 0 0 0 | 0 0          max 1.0, mean 0.1,  bin means (0, .25, 0)  -> binmax 0.25
      X:     .5 x4   | 1 0 0 0 | 0 0          max 1.0, mean 0.3,  bin means (.5, .25, 0) -> 0.5
      X+Y:   .5 x4   | 0 .5 .5 .5 | 0 0       max 0.5, mean 0.35, bin means (.5, .375, 0) -> 0.5
      all:   .5 x4   | 0 .5 .5 .5 | .5 .5     max 0.5, mean 0.45, -> 0.5
    """
    recs = [record(f"x{k}", BOTH, COST, {A: 0.1, B: 0.9}, bin_=0) for k in range(4)]
    recs.append(record("y0", ONLY_LARGE, COST, {A: 0.25, B: 0.75}, bin_=1))
    recs += [record(f"y{k}", BOTH, COST, {A: 0.25, B: 0.75}, bin_=1) for k in (1, 2, 3)]
    recs += [record(f"z{k}", BOTH, COST, {A: 0.4, B: 0.6}, bin_=2) for k in (0, 1)]
    return recs

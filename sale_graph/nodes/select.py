"""``select``: values from the jury, ``argmin (C - V)``, and whether cheaper agents should refine."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from sale_graph.context import SaleContext
from sale_graph.errors import AuctionError
from sale_graph.events import SelectEvent, emit
from sale_graph.llm import describe_error
from sale_graph.memory.bridge import store_auction
from sale_graph.nodes._common import Node, ctx_of
from sale_graph.nodes.score import build_table
from sale_graph.scoring import quorum_met, select_winner
from sale_graph.services import SaleServices
from sale_graph.state import JuryVote, SaleState, ScoreRow, SelectionInfo

STRICT = 1e-12


def _strategy_of(state: SaleState, row: ScoreRow) -> str:
    for b in state.get("bids", []):
        if b["agent"] == row["agent"] and b["round"] == row["round"]:
            return b["strategy"]
    return ""  # pragma: no cover - every row comes from a bid


def _pick(rows: list[ScoreRow]) -> tuple[ScoreRow, float, str | None]:
    sel = select_winner([r["cost"] for r in rows], [r["value"] for r in rows], [r["price"] for r in rows], [r["agent"] for r in rows])
    runner = rows[sel.runner_up]["agent"] if sel.runner_up is not None else None
    return rows[sel.index], sel.margin, runner


def check_quorum(rows: list[ScoreRow], votes: list[JuryVote], ctx: SaleContext, n_judges: int) -> dict[str, Any] | None:
    """``None`` when every bid has its jury quorum; else the ``degraded`` record (with ``allow_degraded``) or an error.

    A bid's value counts only when strictly more than ``ctx.jury_quorum`` of the
    judges scored it (default: a majority). Below that the auction stops with an
    :class:`AuctionError` naming the bids, the judges and why their votes are
    missing, unless the run allows a degraded auction.
    """
    short = [r for r in rows if not quorum_met(n_judges - len(r["missing_judges"]), n_judges, ctx.jury_quorum)]
    if not short:
        return None
    missing = [v for v in votes if v["status"] != "ok" and any(v["bidder"] == r["agent"] and v["round"] == r["round"] for r in short)]
    reasons = sorted({f"{v['judge']}: {v['reason']}" for v in missing})
    bids = [f"{r['agent']} ({r['round']}): {n_judges - len(r['missing_judges'])}/{n_judges} judges" for r in short]
    summary = f"jury quorum not met for {'; '.join(bids)} (each bid needs more than {ctx.jury_quorum:.0%} of the judges)"
    if not ctx.allow_degraded:
        raise AuctionError(
            f"{summary}. Missing votes: {'; '.join(reasons[:6]) or 'none recorded'}. Check the judges' endpoints "
            "(`sale pool check`), raise jury_max_tokens, or pass allow_degraded=True to go on with the votes that came in."
        )
    return {"reason": summary, "bids": [f"{r['agent']}/{r['round']}" for r in short], "missing_votes": reasons}


def drop_refined_below_quorum(
    rows: list[ScoreRow], votes: list[JuryVote], ctx: SaleContext, n_judges: int
) -> tuple[list[ScoreRow], dict[str, str]]:
    """Leave out the refined bids whose jury missed the quorum; returns the rows kept and why each was dropped.

    A refined bid is optional: the auction already has a provisional winner when it is
    judged, so a refined bid without enough votes is dropped (with the reason; the
    caller notes it) rather than stopping a run that is already paid for, and it never
    displaces the provisional winner. With ``allow_degraded`` too: its value would rest
    on too few judges to overrule the original round.
    """
    kept: list[ScoreRow] = []
    dropped: dict[str, str] = {}
    for r in rows:
        answered = n_judges - len(r["missing_judges"])
        if r["round"] == "refined" and not quorum_met(answered, n_judges, ctx.jury_quorum):
            why = sorted({f"{v['judge']}: {v['reason']}" for v in votes
                          if v["status"] != "ok" and v["bidder"] == r["agent"] and v["round"] == "refined"})
            dropped[r["agent"]] = (f"jury quorum not met ({answered}/{n_judges} judges, more than {ctx.jury_quorum:.0%} needed"
                                   + (f"; missing: {'; '.join(why[:6])}" if why else "") + ")")
        else:
            kept.append(r)
    return kept, dropped


def _dropped_suffix(dropped: dict[str, str]) -> str:
    return f" (dropped below the jury quorum: {', '.join(sorted(dropped))})" if dropped else ""


def _refinement_outcome(refined: list[ScoreRow], dropped: dict[str, str], refinement: dict[str, Any]) -> str:
    """What the refinement round came to when no refined bid took the task."""
    if refined:
        outcome = "no refined bid beat the provisional winner"
    elif dropped:
        outcome = "no refined bid had its jury quorum"
    else:
        skipped = {a: e.get("reason", e.get("error", "")) for a, e in refinement.get("agents", {}).items()}
        outcome = "no agent produced a refined bid (" + "; ".join(f"{a}: {r}" for a, r in sorted(skipped.items())) + ")"
    return outcome + _dropped_suffix(dropped)


def make_select_node(services: SaleServices) -> Node:
    """Build the ``select`` node bound to ``services`` (it needs to know whether memory is on)."""

    def select(state: SaleState, runtime: Runtime[SaleContext]) -> dict[str, Any]:
        """Complete the table with the jury, pick the (provisional) winner, decide on refinement."""
        ctx = ctx_of(runtime)
        pool = ctx.resolved_pool()
        rows = build_table(state.get("bids", []), state.get("votes", []), pool, ctx.resolved_weights())
        rows, dropped = drop_refined_below_quorum(rows, state.get("votes", []), ctx, len(pool.names))
        degraded = check_quorum(rows, state.get("votes", []), ctx, len(pool.names))
        originals = [r for r in rows if r["round"] == "original"]
        provisional, margin, runner = _pick(originals)
        winner = provisional
        refinement = dict(state.get("refinement") or {})
        update: dict[str, Any] = {}
        notes: list[str] = []
        if degraded is not None:
            update["degraded"] = degraded
            if not state.get("degraded"):  # noted once, in the first pass
                notes.append(f"DEGRADED auction (allow_degraded=True): {degraded['reason']}")
        notes += [f"refined bid of {agent} dropped, {why}; the provisional winner {provisional['agent']} stands without it"
                  for agent, why in sorted(dropped.items())]
        reason = f"lowest C - V ({provisional['net']:+.4f}) of {len(originals)} bids"
        if runner is not None:
            reason += f", {margin:.4f} ahead of {runner}"

        if refinement.get("status") == "running":
            refined = [r for r in rows if r["round"] == "refined"]
            best_refined = min(refined, key=lambda r: (r["net"], r["price"], r["agent"])) if refined else None
            if best_refined is not None and best_refined["net"] < provisional["net"] - STRICT:
                winner = best_refined
                margin = provisional["net"] - best_refined["net"]
                runner = provisional["agent"]
                reason = (f"refined bid of {winner['agent']} lowered C - V to {winner['net']:+.4f}, "
                          f"below provisional winner {provisional['agent']} ({provisional['net']:+.4f})")
                outcome = f"refined bid of {winner['agent']} took the task" + _dropped_suffix(dropped)
            else:
                outcome = _refinement_outcome(refined, dropped, refinement)
                reason += f"; {outcome}; {provisional['agent']} stays"
            update["refinement"] = {"status": "done", "outcome": outcome}
            if dropped:  # each dropped agent's entry says so, with the votes it missed
                update["refinement"]["agents"] = {a: {**refinement.get("agents", {}).get(a, {}), "status": "dropped", "reason": why}
                                                  for a, why in dropped.items()}
        elif not refinement.get("status"):
            cheaper = [a.name for a in pool.by_price()
                       if a.price < pool.get(provisional["agent"]).price and any(r["agent"] == a.name for r in originals)]
            if not cheaper:
                skip = "the provisional winner is the cheapest agent"
            elif not ctx.refine:
                skip = "refinement is turned off (context.refine=False)"
            elif services.memory_for(ctx) is None:
                skip = "auction memory is off (context.use_memory=False)"
            else:
                skip = ""
            if skip:
                update["refinement"] = {"status": "skipped", "reason": skip}
            else:
                update["refinement"] = {"status": "running", "provisional_winner": provisional["agent"], "refiners": cheaper}

        selection = SelectionInfo(
            winner=winner["agent"], round=winner["round"], strategy=_strategy_of(state, winner), net=winner["net"],
            margin=round(margin, 6), runner_up=runner, provisional_winner=provisional["agent"], reason=reason,
        )
        memory = services.memory_for(ctx)
        if memory is not None:  # write the bids now: a crash before `remember` loses nothing
            try:
                store_auction(memory, {**state, "scores": rows, "selection": selection, "degraded": degraded})
            except Exception as exc:  # the bids are paid for: the run goes on, `remember` writes the auction again
                notes.append(f"memory write failed after selection ({describe_error(exc)}); the run goes on and "
                             "stores the auction at its end")
        emit(runtime, SelectEvent(event="select", winner=selection["winner"], round=selection["round"], net=selection["net"],
                                  margin=selection["margin"], reason=reason))
        if notes:
            update["notes"] = notes
        return {"scores": rows, "selection": selection, **update}

    return select

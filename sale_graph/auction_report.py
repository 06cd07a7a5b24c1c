"""Summaries of one auction's state: ledger totals, auction overhead, and printable tables."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sale_graph.state import UsageEntry

AUCTION_PHASES = ("bid", "jury", "refine")


@dataclass(frozen=True)
class LedgerTotals:
    """Token and dollar totals of a ledger, by phase and by (phase, agent)."""

    by_phase: dict[str, dict[str, float]]
    by_phase_agent: dict[tuple[str, str], dict[str, float]]
    total_tokens: int
    total_cost_usd: float
    auction_tokens: int
    auction_cost_usd: float

    @property
    def auction_token_share(self) -> float:
        """Share of all tokens (input + output) spent on bids, jury and refinement."""
        return self.auction_tokens / self.total_tokens if self.total_tokens else 0.0

    @property
    def auction_cost_share(self) -> float:
        """Share of all dollars spent on bids, jury and refinement."""
        return self.auction_cost_usd / self.total_cost_usd if self.total_cost_usd else 0.0


def ledger_totals(ledger: Iterable[UsageEntry]) -> LedgerTotals:
    """Sum a ledger by phase and by (phase, agent); the auction is phases bid, jury and refine."""
    by_phase: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    by_pa: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for e in ledger:
        for bucket in (by_phase[e["phase"]], by_pa[(e["phase"], e["agent"])]):
            bucket["calls"] += 1
            bucket["input_tokens"] += e["input_tokens"]
            bucket["output_tokens"] += e["output_tokens"]
            bucket["cost_usd"] += e["cost_usd"]
            bucket["seconds"] += e["seconds"]
    tokens = {p: v["input_tokens"] + v["output_tokens"] for p, v in by_phase.items()}
    total_tokens = int(sum(tokens.values()))
    total_cost = float(sum(v["cost_usd"] for v in by_phase.values()))
    auction_tokens = int(sum(t for p, t in tokens.items() if p in AUCTION_PHASES))
    auction_cost = float(sum(v["cost_usd"] for p, v in by_phase.items() if p in AUCTION_PHASES))
    return LedgerTotals(
        by_phase={k: dict(v) for k, v in by_phase.items()},
        by_phase_agent={k: dict(v) for k, v in by_pa.items()},
        total_tokens=total_tokens,
        total_cost_usd=total_cost,
        auction_tokens=auction_tokens,
        auction_cost_usd=auction_cost,
    )


def render_report(state: Mapping[str, Any], timings: Mapping[str, float] | None = None) -> Any:
    """A rich renderable with the bid table, the winner, the answer and the ledger."""
    from rich.console import Group
    from rich.panel import Panel
    from rich.table import Table

    scores = list(state.get("scores", []))
    judges = sorted({j for r in scores for j in r["jury"]})
    bids = Table(title=f"Bids (auction {state.get('auction_id', '')[:8]})", show_lines=False)
    for col in ("agent", "round", "price $/1M", "tokens", "cost C", "entropy H", *[f"jury:{j}" for j in judges], "value V", "C - V"):
        bids.add_column(col, justify="left" if col in ("agent", "round") else "right")
    winner = state.get("selection", {})
    for r in sorted(scores, key=lambda r: r["net"]):
        mark = " *" if (r["agent"], r["round"]) == (winner.get("winner"), winner.get("round")) else ""
        jury = [("-" if r["jury"].get(j) is None else f"{r['jury'][j] * 5:.0f}/5") for j in judges]
        bids.add_row(
            r["agent"] + mark, r["round"], f"{r['price']:.3f}", str(r["tokens"]), f"{r['cost']:.4f}",
            f"{r['entropy']:.3f} ({r['entropy_source']})", *jury, f"{r['value']:.4f}", f"{r['net']:+.4f}",
        )
    failed = [b for b in state.get("bids", []) if b["status"] != "ok"]
    parts: list[Any] = [bids]
    for b in failed:
        parts.append(f"[red]bid of {b['agent']} ({b['round']}) failed:[/red] {b.get('error', '')}")
    missing = [v for v in state.get("votes", []) if v["status"] != "ok"]
    if missing:
        parts.append(f"[yellow]{len(missing)} of {len(state.get('votes', []))} jury scores missing[/yellow] "
                     f"(e.g. {missing[0]['judge']} on {missing[0]['bidder']}: {missing[0]['reason']})")
    if winner:
        parts.append(f"[bold]Winner:[/bold] {winner['winner']} ({winner['round']} bid), margin {winner['margin']:.4f}. {winner['reason']}")
    ref = state.get("refinement") or {}
    if ref:
        detail = ref.get("reason") or ref.get("outcome") or ""
        parts.append(f"Refinement: {ref.get('status', '-')}" + (f" ({detail})" if detail else ""))
    execution = state.get("execution") or {}
    if execution:
        answer = state.get("answer") or f"(no answer: {execution.get('detail', '')})"
        if len(answer) > 1200:
            answer = answer[:1200] + f" ... [{len(answer) - 1200} more characters; --json shows all]"
        parts.append(Panel(answer,
                           title=f"Answer by {execution['agent']} [{execution['status']}, {execution['steps']} steps]"))
        if execution.get("outcome"):
            detail = execution.get("outcome_detail", "")
            parts.append(f"Outcome: {execution['outcome']}" + (f" ({detail})" if detail else ""))

    totals = ledger_totals(state.get("ledger", []))
    ledger = Table(title="Ledger")
    for col in ("phase", "agent", "calls", "in tok", "out tok", "cost $", "call s"):
        ledger.add_column(col, justify="left" if col in ("phase", "agent") else "right")
    for (phase, agent), v in sorted(totals.by_phase_agent.items(), key=lambda kv: (("bid", "jury", "refine", "execute").index(kv[0][0]), kv[0][1])):
        ledger.add_row(phase, agent, f"{v['calls']:.0f}", f"{v['input_tokens']:.0f}", f"{v['output_tokens']:.0f}", f"{v['cost_usd']:.8f}", f"{v['seconds']:.1f}")
    ledger.add_row("total", "", "", "", "", f"{totals.total_cost_usd:.8f}", "")
    parts.append(ledger)
    line = (f"Auction overhead: {totals.auction_token_share:.1%} of tokens, {totals.auction_cost_share:.1%} of cost")
    if timings and timings.get("total"):
        line += f", {timings.get('auction', 0.0) / timings['total']:.1%} of wall time ({timings.get('auction', 0.0):.1f} s of {timings['total']:.1f} s)"
    parts.append(line)
    estimated = sum(1 for e in state.get("ledger", []) if e.get("estimated"))
    if estimated:
        parts.append(f"[yellow]{estimated} ledger entries are estimates: the endpoint reported no token usage[/yellow]")
    for note in state.get("notes", []):
        parts.append(f"[dim]note: {note}[/dim]")
    return Group(*parts)

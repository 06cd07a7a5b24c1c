"""Summaries of one auction's state: ledger totals, auction overhead, and printable tables."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from rich.console import Group
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

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
    scores = list(state.get("scores", []))
    judges = sorted({j for r in scores for j in r["jury"]})
    by_bid = {(b["agent"], b["round"]): b for b in state.get("bids", [])}
    thinking = any(b.get("reasoning_tokens") for b in by_bid.values())
    fingerprint = (state.get("run_context") or {}).get("fingerprint") or {}
    pool = fingerprint.get("pool")
    title = f"Bids (auction {state.get('auction_id', '')[:8]}" + (f", pool: {pool})" if pool else ")")
    bids = Table(title=escape(title), show_lines=False)
    columns = ("agent", "round", "price $/1M", "tokens", *(("think tok",) if thinking else ()), "cost C", "entropy H",
               *[f"jury:{j}" for j in judges], "value V", "C - V")
    for col in columns:
        bids.add_column(escape(col), justify="left" if col in ("agent", "round") else "right")
    winner = state.get("selection", {})
    for r in sorted(scores, key=lambda r: r["net"]):
        bid = by_bid.get((r["agent"], r["round"]), {})
        mark = " *" if (r["agent"], r["round"]) == (winner.get("winner"), winner.get("round")) else ""
        jury = [("-" if r["jury"].get(j) is None else f"{r['jury'][j] * 5:.0f}/5") for j in judges]
        tokens = f"{r['tokens']}{' (cut)' if bid.get('truncated') else ''}{'~' if bid.get('token_source') == 'estimate' else ''}"
        think = (str(bid.get("reasoning_tokens", 0)),) if thinking else ()
        bids.add_row(
            escape(r["agent"] + mark), r["round"], f"{r['price']:.3f}", tokens, *think, f"{r['cost']:.4f}",
            f"{r['entropy']:.3f} ({r['entropy_source']})", *jury, f"{r['value']:.4f}", f"{r['net']:+.4f}",
        )
    parts: list[Any] = []
    degraded = state.get("degraded")
    if degraded:
        parts.append(f"[bold red]DEGRADED auction[/bold red] (allow_degraded): {escape(str(degraded.get('reason', '')))}")
    parts.append(bids)
    if fingerprint.get("cost_rule"):
        parts.append(f"[dim]cost C = w_c x price x tokens; {escape(fingerprint['cost_rule'])}[/dim]")
    if thinking or any(b.get("token_source") == "estimate" for b in by_bid.values()):
        parts.append("[dim]tokens: the visible strategy (|s|); think tok: reasoning, billed in the ledger but never in |s|; "
                     "~ estimated from the text; (cut) hit the token cap[/dim]")
    if state.get("entropy_policy", "").startswith("mixed"):
        parts.append(f"[dim]entropy scale: {escape(state['entropy_policy'])}[/dim]")
    for b in (b for b in state.get("bids", []) if b["status"] != "ok"):
        parts.append(f"[red]bid of {escape(b['agent'])} ({b['round']}) failed:[/red] {escape(b.get('error', ''))}")
    parts.extend(_jury_lines(state.get("votes", [])))
    if winner:
        parts.append(f"[bold]Winner:[/bold] {escape(winner['winner'])} ({winner['round']} bid), margin {winner['margin']:.4f}. "
                     f"{escape(winner['reason'])}")
    ref = state.get("refinement") or {}
    if ref:
        detail = ref.get("reason") or ref.get("outcome") or ""
        parts.append(escape(f"Refinement: {ref.get('status', '-')}" + (f" ({detail})" if detail else "")))
    execution = state.get("execution") or {}
    if execution:
        parts.extend(tool_lines(execution))
        answer = state.get("answer") or f"(no answer: {execution.get('detail', '')})"
        if len(answer) > 1200:
            answer = answer[:1200] + f" ... [{len(answer) - 1200} more characters; --json shows all]"
        parts.append(Panel(escape(answer),
                           title=escape(f"Answer by {execution['agent']} [{execution['status']}, {execution['steps']} steps]")))
        if execution.get("outcome"):
            detail = execution.get("outcome_detail", "")
            parts.append(escape(f"Outcome: {execution['outcome']}" + (f" ({detail})" if detail else "")))

    totals = ledger_totals(state.get("ledger", []))
    ledger = Table(title="Ledger")
    for col in ("phase", "agent", "calls", "in tok", "out tok", "cost $", "call s"):
        ledger.add_column(col, justify="left" if col in ("phase", "agent") else "right")
    order = ("bid", "jury", "refine", "execute")
    for (phase, agent), v in sorted(totals.by_phase_agent.items(), key=lambda kv: (order.index(kv[0][0]), kv[0][1])):
        ledger.add_row(phase, escape(agent), f"{v['calls']:.0f}", f"{v['input_tokens']:.0f}", f"{v['output_tokens']:.0f}",
                       f"{v['cost_usd']:.8f}", f"{v['seconds']:.1f}")
    ledger.add_row("total", "", "", "", "", f"{totals.total_cost_usd:.8f}", "")
    parts.append(ledger)
    line = (f"Auction overhead: {totals.auction_token_share:.1%} of tokens, {totals.auction_cost_share:.1%} of cost")
    if timings and timings.get("total"):
        auction_s = timings.get("auction", 0.0)
        line += f", {auction_s / timings['total']:.1%} of wall time ({auction_s:.1f} s of {timings['total']:.1f} s)"
    parts.append(line)
    estimated = sum(1 for e in state.get("ledger", []) if e.get("estimated"))
    if estimated:
        parts.append(f"[yellow]{estimated} ledger entries are estimates: the endpoint reported no token usage[/yellow]")
    if state.get("memory_error"):
        parts.append(f"[bold red]memory write failed:[/bold red] {escape(state['memory_error'])}")
    for note in state.get("notes", []):
        parts.append(f"[dim]note: {escape(note)}[/dim]")
    return Group(*parts)


def tool_lines(execution: Mapping[str, Any]) -> list[str]:
    """What the executor could use and what each tool call returned, one line per call (results cut to a line)."""
    had = execution.get("tools")
    if had is None:
        return []
    lines = [f"[bold]Tools of {escape(execution['agent'])}:[/bold] {escape(', '.join(had)) if had else 'none'}"]
    uses = execution.get("tool_uses") or []
    if had and not uses:
        lines.append("  (no tool was called)")
    for use in uses:
        args = ", ".join(f"{k}={v!r}" for k, v in use["args"].items())
        result = " ".join(use["result"].split())
        if len(result) > 320:
            result = result[:320] + "..."
        more = f" [{use['result_chars']} characters]" if use["result_chars"] > len(result) else ""
        lines.append(escape(f"  {use['tool']}({args}) -> {result}{more}"))
    return lines


def _jury_lines(votes: list[Mapping[str, Any]]) -> list[str]:
    """How the jury answered: formats asked, missing scores with an example reason, answers cut at the cap."""
    lines = []
    formats = Counter(str(v.get("answer_format", "text")) for v in votes)
    if formats:
        lines.append("[dim]jury answers asked as: " + ", ".join(f"{k} x{n}" for k, n in sorted(formats.items())) + "[/dim]")
    missing = [v for v in votes if v["status"] != "ok"]
    if missing:
        lines.append(f"[yellow]{len(missing)} of {len(votes)} jury scores missing[/yellow] "
                     f"(e.g. {escape(missing[0]['judge'])} on {escape(missing[0]['bidder'])}: {escape(missing[0]['reason'])})")
    cut = sum(1 for v in votes if v.get("truncated"))
    if cut:
        lines.append(f"[yellow]{cut} jury answer(s) hit the jury token cap[/yellow]")
    return lines

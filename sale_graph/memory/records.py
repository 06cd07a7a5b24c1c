"""What the auction memory stores and returns: bids, similar past tasks, contrastive pairs.

Plain frozen dataclasses with no store behind them: :class:`StrategyRecord` is
one bid as stored (with its conversions to and from a Chroma entry and a JSON
dict), :class:`SimilarTask` one past auction found by similarity, and
:class:`ContrastivePair` / :class:`ContrastiveResult` what a refining agent gets.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

import numpy as np

from sale_graph.memory.errors import MemoryStoreError
from sale_graph.state import Outcome

Round = Literal["original", "refined"]
ROUNDS: tuple[str, ...] = ("original", "refined")
OUTCOMES: tuple[str, ...] = ("passed", "failed", "unknown")


def require_finite(name: str, value: Any, where: str) -> float:
    """Convert ``value`` to a finite float, or fail with a message naming the field.

    Args:
        name: the field's name, for the message.
        value: what was given for it.
        where: what holds the field (a record, a file line), for the message.

    Returns:
        ``value`` as a float.

    Raises:
        ValueError: ``value`` is not a number, or is NaN or infinite.
    """
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: {name} must be a number, got {value!r}") from exc
    if not math.isfinite(number):
        raise ValueError(f"{where}: {name} must be finite, got {value!r}")
    return number


@dataclass(frozen=True)
class StrategyRecord:
    """One bid of one auction, as stored in the memory.

    ``auction_id``, ``task``, ``task_id`` and ``domain`` may be left empty when
    the record is passed to :meth:`~sale_graph.memory.AuctionMemory.record_auction`,
    which fills them from its arguments. ``outcome`` is the execution outcome of
    the auction's winner ("passed", "failed", "unknown"); it is the same on every
    bid of an auction.

    Raises:
        ValueError: a field has the wrong type or value (the message names it).
    """

    agent: str
    strategy: str
    cost: float
    entropy: float
    value: float
    round: Round = "original"
    jury_scores: Mapping[str, float] = field(default_factory=dict)
    won: bool = False
    outcome: Outcome = "unknown"
    auction_id: str = ""
    task: str = ""
    task_id: str = ""
    domain: str = ""
    timestamp: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        where = f"StrategyRecord(agent={self.agent!r}, auction_id={self.auction_id!r})"
        if not isinstance(self.agent, str) or not self.agent.strip():
            raise ValueError(f"{where}: agent must be a non-empty string naming the bidder")
        if not isinstance(self.strategy, str):
            raise ValueError(f"{where}: strategy must be a string, got {type(self.strategy).__name__}")
        if self.round not in ROUNDS:
            raise ValueError(f"{where}: round must be one of {ROUNDS}, got {self.round!r}")
        if self.outcome not in OUTCOMES:
            raise ValueError(f"{where}: outcome must be one of {OUTCOMES}, got {self.outcome!r}")
        if not isinstance(self.won, (bool, np.bool_)):
            raise ValueError(f"{where}: won must be a bool, got {self.won!r}")
        for name in ("auction_id", "task", "task_id", "domain"):
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"{where}: {name} must be a string, got {getattr(self, name)!r}")
        object.__setattr__(self, "won", bool(self.won))
        for name in ("cost", "entropy", "value", "timestamp"):
            object.__setattr__(self, name, require_finite(name, getattr(self, name), where))
        if not isinstance(self.jury_scores, Mapping):
            raise ValueError(f"{where}: jury_scores must be a mapping judge -> score, got {self.jury_scores!r}")
        scores = {str(judge): require_finite(f"jury_scores[{judge!r}]", s, where) for judge, s in self.jury_scores.items()}
        object.__setattr__(self, "jury_scores", dict(sorted(scores.items())))

    @property
    def record_id(self) -> str:
        """Deterministic Chroma id: the same (auction, agent, round) always maps to one entry."""
        return strategy_id(self.auction_id, self.agent, self.round)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict of every field (the export format of one bid)."""
        data = asdict(self)
        data["jury_scores"] = dict(self.jury_scores)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StrategyRecord:
        """Inverse of :meth:`to_dict`; unknown keys are an error so typos are not dropped silently.

        Args:
            data: field name -> value, as :meth:`to_dict` writes it.

        Returns:
            The record.

        Raises:
            ValueError: an unknown key, or a field with a bad value.
        """
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown StrategyRecord field(s) {sorted(unknown)}; expected a subset of {sorted(known)}")
        return cls(**dict(data))

    def to_chroma(self) -> tuple[str, str, dict[str, Any]]:
        """Return (id, document, metadata) for the strategies collection."""
        meta: dict[str, Any] = {
            "auction_id": self.auction_id,
            "task": self.task,
            "task_id": self.task_id,
            "domain": self.domain,
            "agent": self.agent,
            "round": self.round,
            "cost": self.cost,
            "entropy": self.entropy,
            "value": self.value,
            "jury_scores": json.dumps(dict(self.jury_scores), sort_keys=True),
            "won": self.won,
            "outcome": self.outcome,
            "timestamp": self.timestamp,
        }
        return self.record_id, self.strategy, meta

    @classmethod
    def from_chroma(cls, document: str | None, metadata: Mapping[str, Any]) -> StrategyRecord:
        """Rebuild a record from a strategies-collection entry.

        Args:
            document: the entry's document (the strategy text).
            metadata: the entry's metadata, as :meth:`to_chroma` wrote it.

        Returns:
            The record.

        Raises:
            MemoryStoreError: the stored jury scores are not readable JSON.
        """
        meta = dict(metadata)
        try:
            scores = json.loads(meta.pop("jury_scores", "{}") or "{}")
        except json.JSONDecodeError as exc:
            raise MemoryStoreError(
                f"bid of auction {meta.get('auction_id')!r} by {meta.get('agent')!r} has unreadable jury_scores: {exc}"
            ) from exc
        known = {f.name for f in fields(cls)} - {"strategy", "jury_scores"}
        return cls(strategy=document or "", jury_scores=scores, **{k: v for k, v in meta.items() if k in known})


def strategy_id(auction_id: str, agent: str, round_: str) -> str:
    """Deterministic id of one bid: a hash, so separators inside names cannot collide.

    Args:
        auction_id: the auction the bid belongs to.
        agent: the bidder.
        round_: "original" or "refined".

    Returns:
        ``"s-"`` and 40 hex digits.
    """
    digest = hashlib.sha256(json.dumps([auction_id, agent, round_]).encode("utf-8")).hexdigest()
    return f"s-{digest[:40]}"


@dataclass(frozen=True)
class SimilarTask:
    """A past auction whose task is similar to the query task."""

    auction_id: str
    task: str
    task_id: str
    domain: str
    similarity: float
    outcome: str
    timestamp: float


@dataclass(frozen=True)
class ContrastivePair:
    """A winning and a losing strategy from the same past auction.

    ``involves`` says how the retrieving agent took part: ``"loser"`` (its own
    losing bid), ``"winner"`` (its own winning bid) or ``None`` (other agents).
    ``agent`` is the retrieving agent ("" when unknown); :attr:`own_winner` and
    :attr:`own_loser` say which side of the pair is its own bid (both, when its
    refined bid won over its own original one), so the refine prompt can mark them.
    """

    auction_id: str
    task: str
    similarity: float
    winner: StrategyRecord
    loser: StrategyRecord
    involves: Literal["loser", "winner"] | None
    agent: str = ""

    @property
    def own_winner(self) -> bool:
        """True when the winning bid is the retrieving agent's own."""
        return bool(self.agent) and self.winner.agent == self.agent

    @property
    def own_loser(self) -> bool:
        """True when the losing bid is the retrieving agent's own."""
        return bool(self.agent) and self.loser.agent == self.agent

    @property
    def past_task(self) -> str:
        """The past task's text (alias of ``task``, as the refine prompt names it)."""
        return self.task

    @property
    def winner_strategy(self) -> str:
        """The winning strategy's text."""
        return self.winner.strategy

    @property
    def loser_strategy(self) -> str:
        """The losing strategy's text."""
        return self.loser.strategy


ReasonCode = Literal["ok", "memory_empty", "no_similar_task", "no_pair"]


@dataclass(frozen=True)
class ContrastiveResult:
    """Pairs for a refining agent, with the reason when there are none.

    ``reason_code`` is ``"ok"`` when pairs were found, else ``"memory_empty"``,
    ``"no_similar_task"`` or ``"no_pair"``; ``reason`` is a sentence the graph
    can record to explain why refinement was skipped.
    """

    pairs: list[ContrastivePair]
    similar: list[SimilarTask]
    reason_code: ReasonCode
    reason: str

    def __bool__(self) -> bool:
        return bool(self.pairs)

    def __len__(self) -> int:
        return len(self.pairs)

    def __iter__(self) -> Iterator[ContrastivePair]:
        return iter(self.pairs)

    @property
    def has_own_pair(self) -> bool:
        """True when at least one pair involves the retrieving agent's own past bids."""
        return any(p.involves is not None for p in self.pairs)

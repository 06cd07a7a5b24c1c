"""Shared auction memory on Chroma (DESIGN.md section 1, steps 5 and 7).

Every auction is remembered: the task, every bid (original and refined, winning
and losing) with its cost, entropy, jury scores, value and win label, and the
execution outcome once it is known. Cheaper agents later retrieve the past
tasks most similar to a new one and, from them, *contrastive pairs* (a winning
strategy and a losing one from the same past auction) to refine their bids.

Layout: two Chroma collections, both in cosine space.

``<prefix>_tasks``
    One entry per auction. Id = the auction id, document = the task text,
    embedding = the task-text embedding. Similarity search runs here, so the
    top k are k distinct past auctions (a single collection of bids would
    return up to 8 bids of the same auction and need over-fetching and
    de-duplication, with a k that silently shrinks).

``<prefix>_strategies``
    One entry per bid. Id = hash of (auction id, agent, round), document = the
    strategy text, metadata = every field of :class:`StrategyRecord` (jury
    scores as a JSON string, because Chroma metadata values are scalars). Its
    embedding is the *task* embedding of its auction, reused at no extra model
    cost: Chroma needs a vector per entry, and this one keeps the bids
    searchable by task similarity with metadata filters (e.g. one agent's own
    past bids) without a second embedding pass over strategy texts. The
    task text is repeated in each bid's metadata so a bid is self-contained.

Writes are upserts with deterministic ids, so re-recording an auction (the
graph records it as soon as bids exist and again after each phase) never
duplicates, and nothing is buffered in this process: what a call wrote is on
the store when it returns, and a crash loses only the calls that never ran.

Concurrency: a ``PersistentClient`` directory must be written by **one process
at a time** (Chroma's embedded mode keeps in-process state; two processes
writing one directory can lose or corrupt writes). Several workers share one
memory through a Chroma server (``chroma run --path DIR --host H --port P``)
and :meth:`AuctionMemory.from_url`, which is the multi-writer mode.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections import Counter, OrderedDict
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Iterable, Iterator, Literal, Mapping, Sequence
from urllib.parse import urlparse

from sale_graph.jsonl import iter_jsonl
import numpy as np

from sale_graph.embeddings import as_chroma_function, default_embeddings
from sale_graph.paths import data_path

Round = Literal["original", "refined"]
Outcome = Literal["passed", "failed", "unknown"]
ROUNDS: tuple[str, ...] = ("original", "refined")
OUTCOMES: tuple[str, ...] = ("passed", "failed", "unknown")

EXPORT_FORMAT = "sale-graph-memory"
EXPORT_VERSION = 1
DEFAULT_MIN_SIMILARITY = 0.88
"""Default cosine floor for "similar task" with the default e5-small embedder.

e5 similarities are compressed (unrelated English task texts still score about
0.70-0.80); benchmarks/memory.py measures paraphrase pairs against unrelated
pairs and this floor sits between the two distributions. Other embedders need
their own floor.
"""

_PAGE = 2000  # rows per Chroma get() page when scanning a collection


class MemoryStoreError(RuntimeError):
    """The memory store cannot do what was asked (unreachable server, wrong embedder, bad file)."""


# --------------------------------------------------------------------------- records


def _finite(name: str, value: Any, where: str) -> float:
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
    the record is passed to :meth:`AuctionMemory.record_auction`, which fills
    them from its arguments. ``outcome`` is the execution outcome of the
    auction's winner ("passed", "failed", "unknown"); it is the same on every
    bid of an auction.
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
            object.__setattr__(self, name, _finite(name, getattr(self, name), where))
        if not isinstance(self.jury_scores, Mapping):
            raise ValueError(f"{where}: jury_scores must be a mapping judge -> score, got {self.jury_scores!r}")
        scores = {str(judge): _finite(f"jury_scores[{judge!r}]", s, where) for judge, s in self.jury_scores.items()}
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
    def from_dict(cls, data: Mapping[str, Any]) -> "StrategyRecord":
        """Inverse of :meth:`to_dict`; unknown keys are an error so typos are not dropped silently."""
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
    def from_chroma(cls, document: str | None, metadata: Mapping[str, Any]) -> "StrategyRecord":
        """Rebuild a record from a strategies-collection entry."""
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
    """Deterministic id of one bid: a hash, so separators inside names cannot collide."""
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
    """

    auction_id: str
    task: str
    similarity: float
    winner: StrategyRecord
    loser: StrategyRecord
    involves: Literal["loser", "winner"] | None

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


# --------------------------------------------------------------------------- pure selection


_OUTCOME_RANK = {"passed": 0, "unknown": 1}


def select_contrastive_pairs(
    similar: Sequence[SimilarTask],
    bids: Iterable[StrategyRecord],
    agent: str,
    max_pairs: int = 4,
) -> tuple[list[ContrastivePair], str]:
    """Choose contrastive pairs from the bids of similar past auctions.

    A pair is (winner, loser) from one auction. Winners that failed on
    execution are never used; winners that passed rank before ones whose
    outcome is unknown. Pairs are ordered by: the retrieving agent's own losing
    bid first, then its own winning bid, then other agents' bids; then by
    winner outcome; then by task similarity (highest first); then the loser
    closest to winning (highest value minus cost: the most informative
    contrast). Returns the pairs and, when empty, a sentence saying why.
    """
    if max_pairs < 1:
        raise ValueError(f"max_pairs must be >= 1, got {max_pairs}")
    by_auction: dict[str, list[StrategyRecord]] = {}
    for bid in bids:
        by_auction.setdefault(bid.auction_id, []).append(bid)
    candidates: list[tuple[tuple[Any, ...], ContrastivePair]] = []
    no_bids = no_winner = failed = no_loser = 0
    for sim in similar:
        auction_bids = by_auction.get(sim.auction_id, [])
        if not auction_bids:
            no_bids += 1
            continue
        winners = [b for b in auction_bids if b.won]
        usable = [w for w in winners if w.outcome != "failed"]
        losers = [b for b in auction_bids if not b.won]
        if not winners:
            no_winner += 1
            continue
        if not usable:
            failed += 1
            continue
        if not losers:
            no_loser += 1
            continue
        for w in usable:
            for lo in losers:
                if lo.agent == agent:
                    involves: Literal["loser", "winner"] | None = "loser"
                    tier = 0
                elif w.agent == agent:
                    involves, tier = "winner", 1
                else:
                    involves, tier = None, 2
                key = (
                    tier,
                    _OUTCOME_RANK[w.outcome],
                    -sim.similarity,
                    -(lo.value - lo.cost),
                    sim.auction_id,
                    lo.agent,
                    lo.round,
                    w.agent,
                    w.round,
                )
                candidates.append(
                    (key, ContrastivePair(sim.auction_id, sim.task, sim.similarity, w, lo, involves))
                )
    candidates.sort(key=lambda item: item[0])
    pairs = [pair for _, pair in candidates[:max_pairs]]
    if pairs:
        return pairs, ""
    parts = []
    if no_bids:
        parts.append(f"{no_bids} with no stored bids")
    if no_winner:
        parts.append(f"{no_winner} with no winning bid recorded")
    if failed:
        parts.append(f"{failed} whose winner failed on execution")
    if no_loser:
        parts.append(f"{no_loser} with no losing bid")
    detail = ", ".join(parts) if parts else "none given"
    return [], f"{len(similar)} similar past task(s) but no winner/loser pair: {detail}"


# --------------------------------------------------------------------------- the store


def _embedder_id(embeddings: Any) -> str:
    """A stable name for an embedder, stored with the collections to catch a switch of model."""
    from langchain_core.embeddings import Embeddings

    if isinstance(embeddings, Embeddings):
        name = getattr(embeddings, "model_name", None) or getattr(embeddings, "model", None)
        label = str(name) if name else f"{type(embeddings).__module__}.{type(embeddings).__qualname__}"
        if getattr(embeddings, "symmetric", None) is True:
            label += " symmetric"
        return label
    namer = getattr(embeddings, "name", None)
    if callable(namer):
        try:
            return f"chroma:{namer()}"
        except TypeError:
            pass
    return f"chroma:{type(embeddings).__module__}.{type(embeddings).__qualname__}"


def _chroma_settings() -> Any:
    from chromadb.config import Settings

    return Settings(anonymized_telemetry=False)


class AuctionMemory:
    """The shared auction memory: record auctions, retrieve similar tasks and contrastive pairs.

    Args:
        path: directory of a ``chromadb.PersistentClient`` (default
            ``$SALE_HOME/memory``). Ignored when ``client`` is given.
        client: any Chroma client, e.g. ``chromadb.HttpClient`` for a shared
            server (see :meth:`from_url`) or ``chromadb.EphemeralClient``.
        embeddings: a LangChain ``Embeddings`` or a Chroma embedding function;
            default ``default_embeddings(symmetric=True)`` (task texts are
            compared with task texts, so both sides get the same e5 prefix).
        collection_prefix: prefix of the two collection names, so several
            memories can live on one server.
        location: how to name the store in messages (set by :meth:`from_url`).
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        client: Any | None = None,
        embeddings: Any | None = None,
        collection_prefix: str = "sale",
        location: str | None = None,
    ) -> None:
        if client is None:
            import chromadb

            self.path: Path | None = Path(path) if path is not None else data_path("memory")
            self.path.mkdir(parents=True, exist_ok=True)
            client = chromadb.PersistentClient(path=str(self.path), settings=_chroma_settings())
            self.location = f"persistent:{self.path}"
        else:
            self.path = None
            self.location = location or f"client:{type(client).__name__}"
        self.client = client
        raw = embeddings if embeddings is not None else default_embeddings(symmetric=True)
        self.embedder_id = _embedder_id(raw)
        self._ef = as_chroma_function(raw)
        self.collection_prefix = collection_prefix
        self._cache: OrderedDict[str, list[float]] = OrderedDict()
        self._open_collections()

    # ----------------------------------------------------------------- opening

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> "AuctionMemory":
        """Open the memory on a Chroma server (``http://host:port``): the multi-writer mode.

        Start the server with ``chroma run --path DIR --host HOST --port PORT``.
        """
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"Chroma URL {url!r} must look like http://host:port (or https://host:port)")
        port = parsed.port or (443 if parsed.scheme == "https" else 8000)
        import chromadb

        try:
            client = chromadb.HttpClient(
                host=parsed.hostname, port=port, ssl=parsed.scheme == "https", settings=_chroma_settings()
            )
            client.heartbeat()
        except Exception as exc:
            raise MemoryStoreError(
                f"cannot reach the Chroma server at {url!r} ({type(exc).__name__}: {exc}); start one with "
                f"`chroma run --path DIR --host {parsed.hostname} --port {port}` or fix the URL"
            ) from exc
        return cls(client=client, location=f"{parsed.scheme}://{parsed.hostname}:{port}", **kwargs)

    def _open_collections(self) -> None:
        names = (f"{self.collection_prefix}_tasks", f"{self.collection_prefix}_strategies")
        opened = []
        for name in names:
            try:
                col = self.client.get_or_create_collection(
                    name,
                    embedding_function=self._ef,
                    configuration={"hnsw": {"space": "cosine"}},
                    metadata={"sale_embedder": self.embedder_id},
                )
            except ValueError as exc:
                if "conflict" not in str(exc).lower():
                    raise
                raise MemoryStoreError(
                    f"collection {name!r} at {self.location} was created with another embedding function "
                    f"({exc}); open it with the embedder it was built with, or use another memory "
                    f"directory / collection_prefix and import an export there"
                ) from exc
            stored = (col.metadata or {}).get("sale_embedder")
            if stored != self.embedder_id:
                raise MemoryStoreError(
                    f"collection {name!r} at {self.location} holds embeddings from {stored!r}, but this "
                    f"memory was opened with {self.embedder_id!r}; similarities across models are "
                    f"meaningless. Open it with the original embedder, or use another memory directory / "
                    f"collection_prefix and `import` an export there (import re-embeds the tasks)"
                )
            opened.append(col)
        self._tasks, self._strategies = opened

    # ----------------------------------------------------------------- embedding

    def _embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            vectors = self._ef(list(missing))
            if len(vectors) != len(missing):
                raise MemoryStoreError(
                    f"embedder {self.embedder_id!r} returned {len(vectors)} vectors for {len(missing)} texts"
                )
            for text, vec in zip(missing, vectors):
                self._cache[text] = np.asarray(vec, dtype=np.float32).tolist()
                self._cache.move_to_end(text)
            while len(self._cache) > 512:
                self._cache.popitem(last=False)
        return [self._cache[t] for t in texts]

    def _embed_query(self, text: str) -> list[float]:
        # Task texts are compared with task texts: the query goes through the
        # same (document) side as the stored tasks, so an asymmetric embedder
        # does not shift it; the default e5 embedder is symmetric anyway.
        return self._embed_documents([text])[0]

    # ----------------------------------------------------------------- writing

    def record_auction(
        self,
        auction_id: str,
        task: str,
        domain: str,
        records: Sequence[StrategyRecord | Mapping[str, Any]],
        *,
        task_id: str = "",
        outcome: Outcome | None = None,
    ) -> list[str]:
        """Write (upsert) an auction and its bids; returns the ids of the stored bids.

        Call it as soon as bids exist and again after scoring, refinement and
        selection: ids are deterministic (auction id + agent + round), so each
        call overwrites the previous state of the same bids and never
        duplicates, and whatever was written survives a crash of the caller.
        Records' empty ``auction_id``/``task``/``task_id``/``domain`` are filled
        from the arguments; conflicting values are an error. The outcome is,
        in order: ``outcome`` if given, the outcome already stored for this
        auction if known, the records' own outcome, else "unknown".
        """
        if not isinstance(auction_id, str) or not auction_id.strip():
            raise ValueError(f"auction_id must be a non-empty string, got {auction_id!r}")
        if not isinstance(task, str) or not task.strip():
            raise ValueError(f"auction {auction_id!r}: task must be a non-empty text, got {task!r}")
        if outcome is not None and outcome not in OUTCOMES:
            raise ValueError(f"auction {auction_id!r}: outcome must be one of {OUTCOMES}, got {outcome!r}")
        domain = domain or ""
        checked: list[StrategyRecord] = []
        for i, raw in enumerate(records):
            rec = raw if isinstance(raw, StrategyRecord) else StrategyRecord.from_dict(raw)
            for name, expected in (("auction_id", auction_id), ("task", task), ("task_id", task_id), ("domain", domain)):
                got = getattr(rec, name)
                if got and expected and got != expected:
                    raise ValueError(
                        f"auction {auction_id!r}: record {i} (agent {rec.agent!r}) has {name}={got!r}, "
                        f"but record_auction was called with {name}={expected!r}"
                    )
            checked.append(rec)
        seen: dict[str, int] = {}
        for i, rec in enumerate(checked):
            key = strategy_id(auction_id, rec.agent, rec.round)
            if key in seen:
                raise ValueError(
                    f"auction {auction_id!r}: records {seen[key]} and {i} are both agent "
                    f"{rec.agent!r}, round {rec.round!r}; an agent has one bid per round"
                )
            seen[key] = i

        existing = self._tasks.get(ids=[auction_id], include=["metadatas"])
        old: Mapping[str, Any] = existing["metadatas"][0] if existing["ids"] else {}
        if outcome is None:
            if old.get("outcome", "unknown") != "unknown":
                outcome = old["outcome"]
            else:
                known = {r.outcome for r in checked} - {"unknown"}
                if len(known) > 1:
                    raise ValueError(
                        f"auction {auction_id!r}: records disagree on the outcome {sorted(known)}; "
                        f"the outcome belongs to the auction, pass outcome= explicitly"
                    )
                outcome = known.pop() if known else "unknown"  # type: ignore[assignment]
        task_id = task_id or next((r.task_id for r in checked if r.task_id), "") or str(old.get("task_id", ""))
        domain = domain or next((r.domain for r in checked if r.domain), "") or str(old.get("domain", ""))
        for name, values in (("task_id", {r.task_id for r in checked} - {""}), ("domain", {r.domain for r in checked} - {""})):
            if len(values) > 1:
                raise ValueError(f"auction {auction_id!r}: records disagree on {name}: {sorted(values)}")
        timestamp = float(old["timestamp"]) if old else min([r.timestamp for r in checked], default=time.time())
        bids = [
            replace(r, auction_id=auction_id, task=task, task_id=task_id, domain=domain, outcome=outcome)
            for r in checked
        ]

        vector = self._embed_documents([task])[0]
        # The task entry first: bids are never orphaned from the index that finds them.
        self._tasks.upsert(
            ids=[auction_id],
            embeddings=[vector],
            documents=[task],
            metadatas=[
                {"auction_id": auction_id, "task_id": task_id, "domain": domain, "timestamp": timestamp, "outcome": outcome}
            ],
        )
        if bids:
            self._upsert_bids(bids, [vector] * len(bids))
        return [r.record_id for r in bids]

    def _upsert_bids(self, bids: Sequence[StrategyRecord], vectors: Sequence[Sequence[float]]) -> None:
        batch = max(1, min(1000, self._max_batch()))
        for start in range(0, len(bids), batch):
            chunk = bids[start : start + batch]
            triples = [b.to_chroma() for b in chunk]
            self._strategies.upsert(
                ids=[t[0] for t in triples],
                documents=[t[1] for t in triples],
                metadatas=[t[2] for t in triples],
                embeddings=list(vectors[start : start + batch]),
            )

    def _max_batch(self) -> int:
        getter = getattr(self.client, "get_max_batch_size", None)
        return int(getter()) if callable(getter) else 1000

    def update_outcome(self, auction_id: str, outcome: Outcome) -> int:
        """Set the execution outcome of a recorded auction (on the auction and all its bids).

        Returns the number of bids updated. The auction must have been recorded
        first, so a typo in the id is an error rather than a lost outcome.
        """
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome for auction {auction_id!r} must be one of {OUTCOMES}, got {outcome!r}")
        found = self._tasks.get(ids=[auction_id], include=[])
        if not found["ids"]:
            raise KeyError(
                f"auction {auction_id!r} is not in the memory at {self.location}; record it with record_auction first"
            )
        self._tasks.update(ids=[auction_id], metadatas=[{"outcome": outcome}])
        ids = self._strategies.get(where={"auction_id": auction_id}, include=[])["ids"]
        if ids:
            self._strategies.update(ids=ids, metadatas=[{"outcome": outcome}] * len(ids))
        return len(ids)

    # ----------------------------------------------------------------- reading

    def count_auctions(self) -> int:
        """Number of auctions stored."""
        return self._tasks.count()

    def count_strategies(self) -> int:
        """Number of bids stored."""
        return self._strategies.count()

    def get_auction(self, auction_id: str) -> list[StrategyRecord]:
        """All stored bids of one auction (empty if unknown), sorted by round then agent."""
        got = self._strategies.get(where={"auction_id": auction_id}, include=["documents", "metadatas"])
        bids = [StrategyRecord.from_chroma(d, m) for d, m in zip(got["documents"], got["metadatas"])]
        return sorted(bids, key=lambda b: (ROUNDS.index(b.round), b.agent))

    def _query_tasks(
        self, task: str, k: int, domain: str | None, exclude: Sequence[str]
    ) -> list[SimilarTask]:
        if not isinstance(task, str) or not task.strip():
            raise ValueError(f"task must be a non-empty text to search the memory with, got {task!r}")
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        clauses: list[dict[str, Any]] = []
        if domain is not None:
            clauses.append({"domain": domain})
        if exclude:
            clauses.append({"auction_id": {"$nin": list(exclude)}})
        where: dict[str, Any] | None = None
        if len(clauses) == 1:
            where = clauses[0]
        elif clauses:
            where = {"$and": clauses}
        result = self._tasks.query(
            query_embeddings=[self._embed_query(task)],
            n_results=k,
            where=where,
            include=["documents", "metadatas", "distances"],
        )
        out = []
        for doc, meta, dist in zip(result["documents"][0], result["metadatas"][0], result["distances"][0]):
            out.append(
                SimilarTask(
                    auction_id=str(meta["auction_id"]),
                    task=doc or "",
                    task_id=str(meta.get("task_id", "")),
                    domain=str(meta.get("domain", "")),
                    similarity=1.0 - float(dist),
                    outcome=str(meta.get("outcome", "unknown")),
                    timestamp=float(meta.get("timestamp", 0.0)),
                )
            )
        return out

    def similar_tasks(
        self,
        task: str,
        k: int = 5,
        min_similarity: float = DEFAULT_MIN_SIMILARITY,
        *,
        domain: str | None = None,
        exclude_auction_ids: Sequence[str] = (),
    ) -> list[SimilarTask]:
        """The up-to-``k`` past tasks most similar to ``task`` with cosine similarity >= ``min_similarity``.

        ``domain`` restricts the search to one domain; ``exclude_auction_ids``
        leaves out auctions (typically the current one, already recorded
        because bids are written as soon as they exist).
        """
        return [s for s in self._query_tasks(task, k, domain, exclude_auction_ids) if s.similarity >= min_similarity]

    def contrastive_pairs(
        self,
        task: str,
        agent: str,
        k: int = 5,
        min_similarity: float = DEFAULT_MIN_SIMILARITY,
        max_pairs: int = 4,
        *,
        domain: str | None = None,
        exclude_auction_ids: Sequence[str] = (),
    ) -> ContrastiveResult:
        """Winner/loser strategy pairs from the ``k`` most similar past auctions, for ``agent`` to refine.

        See :func:`select_contrastive_pairs` for the ordering (own losing bids
        first, never a winner that failed). When there are no pairs, the result
        says why: the memory is empty, no past task clears the similarity
        floor, or the similar tasks have no usable winner/loser pair.
        """
        if self._tasks.count() == 0:
            return ContrastiveResult([], [], "memory_empty", f"memory is empty ({self.location})")
        nearest = self._query_tasks(task, k, domain, exclude_auction_ids)
        similar = [s for s in nearest if s.similarity >= min_similarity]
        if not similar:
            scope = f" in domain {domain!r}" if domain is not None else ""
            if nearest:
                best = nearest[0]
                snippet = best.task if len(best.task) <= 60 else best.task[:57] + "..."
                why = (
                    f"no past task{scope} above similarity {min_similarity:g} "
                    f"(closest: {best.similarity:.3f}, auction {best.auction_id!r}: {snippet!r})"
                )
            else:
                why = f"no past task{scope} to compare with (all excluded or none in that domain)"
            return ContrastiveResult([], [], "no_similar_task", why)
        ids = [s.auction_id for s in similar]
        got = self._strategies.get(where={"auction_id": {"$in": ids}}, include=["documents", "metadatas"])
        bids = [StrategyRecord.from_chroma(d, m) for d, m in zip(got["documents"], got["metadatas"])]
        pairs, why = select_contrastive_pairs(similar, bids, agent, max_pairs=max_pairs)
        if not pairs:
            return ContrastiveResult([], similar, "no_pair", why)
        own = sum(p.involves is not None for p in pairs)
        return ContrastiveResult(
            pairs, similar, "ok", f"{len(pairs)} pair(s) from {len(similar)} similar task(s), {own} with {agent!r}'s own bids"
        )

    # ----------------------------------------------------------------- scanning

    def _scan(self, collection: Any, include: list[str]) -> Iterator[tuple[str, str | None, Mapping[str, Any]]]:
        offset = 0
        while True:
            page = collection.get(include=include, limit=_PAGE, offset=offset)
            ids = page["ids"]
            if not ids:
                return
            docs = page.get("documents") or [None] * len(ids)
            metas = page.get("metadatas") or [{}] * len(ids)
            yield from zip(ids, docs, metas)
            offset += len(ids)

    def stats(self) -> dict[str, Any]:
        """Counts: auctions, bids, per-agent bids/wins/losses/refined bids, auction outcomes, domains."""
        agents: dict[str, Counter[str]] = {}
        for _id, _doc, meta in self._scan(self._strategies, ["metadatas"]):
            c = agents.setdefault(str(meta.get("agent")), Counter())
            c["bids"] += 1
            c["wins" if meta.get("won") else "losses"] += 1
            if meta.get("round") == "refined":
                c["refined"] += 1
        outcomes: Counter[str] = Counter({o: 0 for o in OUTCOMES})
        domains: Counter[str] = Counter()
        auctions = 0
        for _id, _doc, meta in self._scan(self._tasks, ["metadatas"]):
            auctions += 1
            outcomes[str(meta.get("outcome", "unknown"))] += 1
            domains[str(meta.get("domain", ""))] += 1
        return {
            "location": self.location,
            "embedder": self.embedder_id,
            "auctions": auctions,
            "strategies": sum(c["bids"] for c in agents.values()),
            "agents": {
                name: {key: c[key] for key in ("bids", "wins", "losses", "refined")} for name, c in sorted(agents.items())
            },
            "outcomes": dict(outcomes),
            "domains": dict(sorted(domains.items())),
        }

    # ----------------------------------------------------------------- export / import

    def _auction_lines(self) -> list[dict[str, Any]]:
        auctions: dict[str, dict[str, Any]] = {}
        for aid, doc, meta in self._scan(self._tasks, ["documents", "metadatas"]):
            auctions[aid] = {
                "kind": "auction",
                "auction_id": aid,
                "task": doc or "",
                "task_id": str(meta.get("task_id", "")),
                "domain": str(meta.get("domain", "")),
                "timestamp": float(meta.get("timestamp", 0.0)),
                "outcome": str(meta.get("outcome", "unknown")),
            }
        return sorted(auctions.values(), key=lambda a: (a["timestamp"], a["auction_id"]))

    def export_jsonl(self, path: str | Path) -> int:
        """Write the whole memory to a JSON-lines file; returns the number of bids written.

        Line 1 is a header; then each auction line is followed by its bids,
        in a deterministic order, so export -> import -> export is
        byte-identical. Embeddings are not exported (import re-embeds, which
        also lets a memory move to another embedder).
        """
        path = Path(path)
        bids_by_auction: dict[str, list[StrategyRecord]] = {}
        for _id, doc, meta in self._scan(self._strategies, ["documents", "metadatas"]):
            rec = StrategyRecord.from_chroma(doc, meta)
            bids_by_auction.setdefault(rec.auction_id, []).append(rec)
        auctions = self._auction_lines()
        known = {a["auction_id"] for a in auctions}
        orphans = sorted(set(bids_by_auction) - known)
        if orphans:
            raise MemoryStoreError(
                f"{len(orphans)} auction(s) have bids but no task entry (e.g. {orphans[0]!r}); "
                f"re-record them with record_auction before exporting"
            )
        n = 0
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            fh.write(_dumps({"kind": "header", "format": EXPORT_FORMAT, "version": EXPORT_VERSION}) + "\n")
            for auction in auctions:
                fh.write(_dumps(auction) + "\n")
                for rec in sorted(bids_by_auction.get(auction["auction_id"], []), key=lambda b: (ROUNDS.index(b.round), b.agent)):
                    fh.write(_dumps({"kind": "strategy", **rec.to_dict()}) + "\n")
                    n += 1
        tmp.replace(path)
        return n

    def import_jsonl(self, path: str | Path) -> tuple[int, int]:
        """Load an export into this memory; returns (auctions, bids) imported.

        Idempotent: ids are deterministic, so importing a file twice, or into a
        memory that already holds some of its auctions, does not duplicate.
        The whole file is validated before anything is written, so a bad line
        leaves the memory untouched; the error names the line.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"memory export {str(path)!r} does not exist")
        auctions: dict[str, dict[str, Any]] = {}
        bids: list[StrategyRecord] = []
        with path.open(encoding="utf-8") as fh:
            for where, _lineno, data in iter_jsonl(fh, path, MemoryStoreError):
                kind = data.pop("kind", None) if isinstance(data, dict) else None
                try:
                    if kind == "header":
                        if data.get("format") != EXPORT_FORMAT or data.get("version") != EXPORT_VERSION:
                            raise ValueError(
                                f"header says format {data.get('format')!r} version {data.get('version')!r}; "
                                f"this reader takes {EXPORT_FORMAT!r} version {EXPORT_VERSION}"
                            )
                    elif kind == "auction":
                        outcome = data.get("outcome", "unknown")
                        if outcome not in OUTCOMES:
                            raise ValueError(f"outcome must be one of {OUTCOMES}, got {outcome!r}")
                        if not data.get("auction_id") or not data.get("task"):
                            raise ValueError("auction line needs a non-empty auction_id and task")
                        auctions[data["auction_id"]] = {
                            "task": str(data["task"]),
                            "task_id": str(data.get("task_id", "")),
                            "domain": str(data.get("domain", "")),
                            "timestamp": _finite("timestamp", data.get("timestamp", 0.0), where),
                            "outcome": outcome,
                        }
                    elif kind == "strategy":
                        rec = StrategyRecord.from_dict(data)
                        if not rec.auction_id or not rec.task:
                            raise ValueError("strategy line needs a non-empty auction_id and task")
                        bids.append(rec)
                    else:
                        raise ValueError(f"unknown line kind {kind!r}; expected header, auction or strategy")
                except (ValueError, TypeError) as exc:
                    raise MemoryStoreError(f"{where}: {exc}") from exc
        first_seen: dict[str, float] = {}
        for rec in bids:
            first_seen[rec.auction_id] = min(rec.timestamp, first_seen.get(rec.auction_id, rec.timestamp))
        for rec in bids:
            entry = auctions.setdefault(
                rec.auction_id,
                {
                    "task": rec.task,
                    "task_id": rec.task_id,
                    "domain": rec.domain,
                    "timestamp": first_seen[rec.auction_id],
                    "outcome": rec.outcome,
                },
            )
            if entry["task"] != rec.task:
                raise MemoryStoreError(
                    f"{path}: bid of agent {rec.agent!r} in auction {rec.auction_id!r} has a task text that "
                    f"differs from its auction line; fix or drop one of them"
                )
        ids = sorted(auctions)
        vectors = self._embed_many([auctions[a]["task"] for a in ids])
        by_id = dict(zip(ids, vectors))
        batch = max(1, min(1000, self._max_batch()))
        for start in range(0, len(ids), batch):
            chunk = ids[start : start + batch]
            self._tasks.upsert(
                ids=chunk,
                embeddings=[by_id[a] for a in chunk],
                documents=[auctions[a]["task"] for a in chunk],
                metadatas=[
                    {"auction_id": a, **{k: auctions[a][k] for k in ("task_id", "domain", "timestamp", "outcome")}}
                    for a in chunk
                ],
            )
        self._upsert_bids(bids, [by_id[b.auction_id] for b in bids])
        return len(ids), len(bids)

    def _embed_many(self, texts: Sequence[str], batch: int = 64) -> list[list[float]]:
        out: list[list[float]] = []
        for start in range(0, len(texts), batch):
            out.extend(self._embed_documents(texts[start : start + batch]))
        return out

    def clear(self) -> tuple[int, int]:
        """Delete every auction and bid (drops and re-creates the collections); returns (auctions, bids) removed."""
        counts = (self._tasks.count(), self._strategies.count())
        for col in (self._tasks, self._strategies):
            self.client.delete_collection(col.name)
        self._cache.clear()
        self._open_collections()
        return counts


def _dumps(data: Mapping[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, ensure_ascii=False, allow_nan=False)

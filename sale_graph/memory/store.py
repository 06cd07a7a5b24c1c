"""The auction memory on Chroma: :class:`AuctionMemory` (docs/method.md, "One auction", steps 5 and 7).

Layout: two Chroma collections, both in cosine space.

``<prefix>_tasks``
    One entry per auction. Id = the auction id, document = the task text,
    embedding = the task-text embedding, metadata = task id, domain ("" for
    none), timestamp, outcome, and ``degraded`` / ``degraded_reason`` (the
    auction went on below its jury quorum). Similarity search runs here, with
    the domain as a ``where`` filter of the query itself, so the top k are k
    distinct past auctions of that domain (a single collection of bids would
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

import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from sale_graph.memory.chroma import embedder_id, http_client, max_batch, open_collections, persistent_client, scan, task_filter
from sale_graph.memory.pairs import no_similar_reason, select_contrastive_pairs
from sale_graph.memory.recording import auction_degraded, auction_labels, auction_outcome, checked_records
from sale_graph.memory.records import (
    OUTCOMES,
    ROUNDS,
    ContrastiveResult,
    Outcome,
    SimilarTask,
    StrategyRecord,
)
from sale_graph.memory.retention import GRADED_POLICIES, GradedPolicy, PruneResult, prune_collections
from sale_graph.memory.stats import collection_stats
from sale_graph.memory.transfer import AUCTION_FIELDS, read_export, write_export
from sale_graph.memory.vectors import TaskVectors
from sale_graph.storage.paths import data_path
from sale_graph.storage.text_embedder import as_chroma_function, default_embeddings

DEFAULT_MIN_SIMILARITY = 0.88
"""Default cosine floor for "similar task" with the default e5-small embedder.

e5 similarities are compressed (unrelated English task texts still score about
0.70-0.80); benchmarks/memory.py measures paraphrase pairs against unrelated
pairs and this floor sits between the two distributions. Other embedders need
their own floor.
"""


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

    Raises:
        MemoryStoreError: the collections were built with another embedder.
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
            self.path: Path | None = Path(path) if path is not None else data_path("memory")
            self.path.mkdir(parents=True, exist_ok=True)
            client = persistent_client(self.path)
            self.location = f"persistent:{self.path}"
        else:
            self.path = None
            self.location = location or f"client:{type(client).__name__}"
        self.client = client
        raw = embeddings if embeddings is not None else default_embeddings(symmetric=True)
        self.embedder_id = embedder_id(raw)
        self._ef = as_chroma_function(raw)
        self.collection_prefix = collection_prefix
        self._vectors = TaskVectors(self._ef, self.embedder_id)
        self._open_collections()

    # ----------------------------------------------------------------- opening

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> AuctionMemory:
        """Open the memory on a Chroma server (``http://host:port``): the multi-writer mode.

        Start the server with ``chroma run --path DIR --host HOST --port PORT``.

        Args:
            url: the server, ``http://host:port`` or ``https://host:port``.
            **kwargs: passed on to :class:`AuctionMemory` (e.g. ``collection_prefix``).

        Returns:
            The memory on that server.

        Raises:
            ValueError: ``url`` is not an http(s) URL with a host.
            MemoryStoreError: the server does not answer.
        """
        client, location = http_client(url)
        return cls(client=client, location=location, **kwargs)

    def _open_collections(self) -> None:
        self._tasks, self._strategies = open_collections(
            self.client, self.collection_prefix, self._ef, self.embedder_id, self.location
        )

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
        degraded: bool | None = None,
        degraded_reason: str = "",
    ) -> list[str]:
        """Write (upsert) an auction and its bids; returns the ids of the stored bids.

        Call it as soon as bids exist and again after scoring, refinement and
        selection: ids are deterministic (auction id + agent + round), so each
        call overwrites the previous state of the same bids and never
        duplicates, and whatever was written survives a crash of the caller.
        Records' empty ``auction_id``/``task``/``task_id``/``domain`` are filled
        from the arguments; conflicting values are an error. The outcome is,
        in order: ``outcome`` if given, the outcome already stored for this
        auction if known, the records' own outcome, else "unknown". The
        ``degraded`` flag (the auction went on below its jury quorum) is the one
        given, else the one stored, else ``False``.

        Args:
            auction_id: the auction's id.
            task: the auction's task text (what similarity search compares).
            domain: the task's domain ("" for none).
            records: the bids, as records or :meth:`StrategyRecord.to_dict` dicts.
            task_id: the task's id in its task set, if any.
            outcome: the execution outcome of the auction's winner, if known.
            degraded: whether the auction went on below its jury quorum
                (``None``: keep what is stored).
            degraded_reason: why, with ``degraded=True``.

        Returns:
            The ids of the stored bids, in the order of ``records``.

        Raises:
            ValueError: a bad argument, records that conflict with the arguments
                or with each other, two bids of one agent in one round, or a
                ``degraded_reason`` without ``degraded=True``.
        """
        if not isinstance(auction_id, str) or not auction_id.strip():
            raise ValueError(f"auction_id must be a non-empty string, got {auction_id!r}")
        if not isinstance(task, str) or not task.strip():
            raise ValueError(f"auction {auction_id!r}: task must be a non-empty text, got {task!r}")
        if outcome is not None and outcome not in OUTCOMES:
            raise ValueError(f"auction {auction_id!r}: outcome must be one of {OUTCOMES}, got {outcome!r}")
        domain = domain or ""
        checked = checked_records(auction_id, task, task_id, domain, records)

        existing = self._tasks.get(ids=[auction_id], include=["metadatas"])
        old: Mapping[str, Any] = existing["metadatas"][0] if existing["ids"] else {}
        outcome = auction_outcome(auction_id, outcome, old, checked)
        task_id, domain = auction_labels(auction_id, task_id, domain, old, checked)
        degraded, degraded_reason = auction_degraded(auction_id, degraded, degraded_reason, old)
        timestamp = float(old["timestamp"]) if old else min([r.timestamp for r in checked], default=time.time())
        bids = [
            replace(r, auction_id=auction_id, task=task, task_id=task_id, domain=domain, outcome=outcome)
            for r in checked
        ]

        vector = self._vectors.documents([task])[0]
        # The task entry first: bids are never orphaned from the index that finds them.
        self._tasks.upsert(
            ids=[auction_id],
            embeddings=[vector],
            documents=[task],
            metadatas=[{
                "auction_id": auction_id, "task_id": task_id, "domain": domain, "timestamp": timestamp,
                "outcome": outcome, "degraded": degraded, "degraded_reason": degraded_reason,
            }],
        )
        if bids:
            self._upsert_bids(bids, [vector] * len(bids))
        return [r.record_id for r in bids]

    def _upsert_tasks(
        self, ids: Sequence[str], vectors: Sequence[Sequence[float]], auctions: Mapping[str, Mapping[str, Any]]
    ) -> None:
        batch = max(1, min(1000, max_batch(self.client)))
        for start in range(0, len(ids), batch):
            chunk = ids[start : start + batch]
            self._tasks.upsert(
                ids=list(chunk),
                embeddings=list(vectors[start : start + batch]),
                documents=[auctions[a]["task"] for a in chunk],
                metadatas=[
                    {"auction_id": a, **{k: auctions[a][k] for k in AUCTION_FIELDS}}
                    for a in chunk
                ],
            )

    def _upsert_bids(self, bids: Sequence[StrategyRecord], vectors: Sequence[Sequence[float]]) -> None:
        batch = max(1, min(1000, max_batch(self.client)))
        for start in range(0, len(bids), batch):
            chunk = bids[start : start + batch]
            triples = [b.to_chroma() for b in chunk]
            self._strategies.upsert(
                ids=[t[0] for t in triples],
                documents=[t[1] for t in triples],
                metadatas=[t[2] for t in triples],
                embeddings=list(vectors[start : start + batch]),
            )

    def update_outcome(self, auction_id: str, outcome: Outcome) -> int:
        """Set the execution outcome of a recorded auction (on the auction and all its bids).

        The auction must have been recorded first, so a typo in the id is an
        error rather than a lost outcome.

        Args:
            auction_id: the auction's id.
            outcome: "passed", "failed" or "unknown".

        Returns:
            The number of bids updated.

        Raises:
            ValueError: ``outcome`` is not one of the three.
            KeyError: the auction is not in the memory.
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
        bids = [StrategyRecord.from_chroma(d, m) for d, m in zip(got["documents"], got["metadatas"], strict=True)]
        return sorted(bids, key=lambda b: (ROUNDS.index(b.round), b.agent))

    def _query_tasks(self, task: str, k: int, domain: str | None, exclude: Sequence[str], graded: GradedPolicy) -> list[SimilarTask]:
        if not isinstance(task, str) or not task.strip():
            raise ValueError(f"task must be a non-empty text to search the memory with, got {task!r}")
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if graded not in GRADED_POLICIES:
            raise ValueError(f"graded must be one of {GRADED_POLICIES}, got {graded!r}")
        result = self._tasks.query(
            query_embeddings=[self._vectors.query(task)],
            n_results=k,
            where=task_filter(domain, exclude, graded_only=graded == "only"),
            include=["documents", "metadatas", "distances"],
        )
        out = []
        for doc, meta, dist in zip(result["documents"][0], result["metadatas"][0], result["distances"][0], strict=True):
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
        graded: GradedPolicy = "any",
    ) -> list[SimilarTask]:
        """The up-to-``k`` past tasks most similar to ``task`` with cosine similarity >= ``min_similarity``.

        Args:
            task: the new task's text.
            k: how many nearest past tasks to consider.
            min_similarity: the cosine floor.
            domain: restrict the search to past tasks of this domain ("": only
                those recorded with no domain; ``None``: every domain).
            exclude_auction_ids: auctions to leave out (typically the current
                one, already recorded because bids are written as soon as they exist).
            graded: ``any``, ``first`` (auctions with a known outcome before the
                unlabelled ones) or ``only`` (no unlabelled auction); see
                :data:`~sale_graph.memory.retention.GRADED_POLICIES`.

        Returns:
            The similar past tasks, most similar first (graded ones first with ``first``).
        """
        found = [s for s in self._query_tasks(task, k, domain, exclude_auction_ids, graded) if s.similarity >= min_similarity]
        return sorted(found, key=lambda s: s.outcome == "unknown") if graded == "first" else found

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
        graded: GradedPolicy = "any",
    ) -> ContrastiveResult:
        """Winner/loser strategy pairs from the ``k`` most similar past auctions, for ``agent`` to refine.

        See :func:`~sale_graph.memory.select_contrastive_pairs` for the ordering
        (own losing bids first, never a winner that failed). Domain rule: with a
        ``domain``, only past tasks recorded with exactly that domain count, and
        a task with no domain (``""``) matches only past tasks recorded with no
        domain; the filter is part of the Chroma query, so the top ``k`` are all
        of that domain. ``None`` searches every domain. When there are no
        pairs, the result says why: the memory is empty, no past task (of the
        domain) clears the similarity floor, or the similar tasks have no usable
        winner/loser pair.

        Args:
            task: the new task's text.
            agent: the refining agent.
            k: how many nearest past tasks to consider.
            min_similarity: the cosine floor for a similar task.
            max_pairs: the most pairs to return.
            domain: the new task's domain ("" for none); ``None`` searches every domain.
            exclude_auction_ids: auctions to leave out (typically the current one).
            graded: ``any`` (the order above), ``first`` (pairs of auctions with a
                known outcome before every pair of an unlabelled one) or ``only``
                (unlabelled auctions are not searched).

        Returns:
            The pairs, the similar tasks, and the reason.
        """
        if self._tasks.count() == 0:
            return ContrastiveResult([], [], "memory_empty", f"memory is empty ({self.location})")
        nearest = self._query_tasks(task, k, domain, exclude_auction_ids, graded)
        similar = [s for s in nearest if s.similarity >= min_similarity]
        if not similar:
            why = no_similar_reason(nearest, min_similarity, domain, graded_only=graded == "only")
            return ContrastiveResult([], [], "no_similar_task", why)
        ids = [s.auction_id for s in similar]
        got = self._strategies.get(where={"auction_id": {"$in": ids}}, include=["documents", "metadatas"])
        bids = [StrategyRecord.from_chroma(d, m) for d, m in zip(got["documents"], got["metadatas"], strict=True)]
        pairs, why = select_contrastive_pairs(similar, bids, agent, max_pairs=max_pairs, graded_first=graded == "first")
        if not pairs:
            return ContrastiveResult([], similar, "no_pair", why)
        own = sum(p.involves is not None for p in pairs)
        return ContrastiveResult(
            pairs, similar, "ok", f"{len(pairs)} pair(s) from {len(similar)} similar task(s), {own} with {agent!r}'s own bids"
        )

    # ----------------------------------------------------------------- scanning

    def stats(self) -> dict[str, Any]:
        """Counts: auctions, degraded auctions, bids, per-agent bids/wins/losses/refined bids, outcomes, domains."""
        return {"location": self.location, "embedder": self.embedder_id, **collection_stats(self._tasks, self._strategies)}

    # ----------------------------------------------------------------- retention

    def prune(
        self, max_auctions: int | None = None, max_age_days: float | None = None, *,
        keep: Sequence[str] = (), now: float | None = None, dry_run: bool = False,
    ) -> PruneResult:
        """Apply a retention limit (the order: :mod:`sale_graph.memory.retention`); each auction goes with its bids.

        Args:
            max_auctions: the most auctions to keep (``None``: no count limit).
            max_age_days: remove auctions recorded more than this many days ago (``None``: no age limit).
            keep: auction ids never removed (a run keeps its own).
            now: the current time, seconds since the epoch (default: now).
            dry_run: count what would go and remove nothing.

        Returns:
            What was removed and kept (``note()`` says it in one line).
        """
        return prune_collections(self.client, self._tasks, self._strategies, max_auctions, max_age_days,
                                 keep=keep, now=now, dry_run=dry_run)

    # ----------------------------------------------------------------- export / import

    def export_jsonl(self, path: str | Path) -> int:
        """Write the whole memory to a JSON-lines file (format: :mod:`sale_graph.memory.transfer`).

        Export -> import -> export is byte-identical. Embeddings are not
        exported (import re-embeds, which also lets a memory move to another
        embedder).

        Args:
            path: the file to write.

        Returns:
            The number of bids written.

        Raises:
            MemoryStoreError: some bids belong to no stored auction.
        """
        entries = scan(self._strategies, ["documents", "metadatas"])
        bids = (StrategyRecord.from_chroma(doc, meta) for _id, doc, meta in entries)
        return write_export(Path(path), bids, scan(self._tasks, ["documents", "metadatas"]))

    def import_jsonl(self, path: str | Path) -> tuple[int, int]:
        """Load an export into this memory.

        Idempotent: ids are deterministic, so importing a file twice, or into a
        memory that already holds some of its auctions, does not duplicate.
        The whole file is validated before anything is written, so a bad line
        leaves the memory untouched; the error names the line.

        Args:
            path: the export file.

        Returns:
            The numbers of auctions and bids imported.

        Raises:
            FileNotFoundError: ``path`` is not a file.
            MemoryStoreError: the file is not a valid export.
        """
        auctions, bids = read_export(Path(path))
        ids = sorted(auctions)
        vectors = self._vectors.many([auctions[a]["task"] for a in ids])
        by_id = dict(zip(ids, vectors, strict=True))
        self._upsert_tasks(ids, vectors, auctions)
        self._upsert_bids(bids, [by_id[b.auction_id] for b in bids])
        return len(ids), len(bids)

    def clear(self) -> tuple[int, int]:
        """Delete every auction and bid (drops and re-creates the collections); returns (auctions, bids) removed."""
        counts = (self._tasks.count(), self._strategies.count())
        for col in (self._tasks, self._strategies):
            self.client.delete_collection(col.name)
        self._vectors.clear()
        self._open_collections()
        return counts

"""Shared auction memory on Chroma (docs/method.md, "One auction", steps 5 and 7).

Every auction is remembered: the task, every bid (original and refined, winning
and losing) with its cost, entropy, jury scores, value and win label, and the
execution outcome once it is known. Cheaper agents later retrieve the past
tasks most similar to a new one and, from them, *contrastive pairs* (a winning
strategy and a losing one from the same past auction) to refine their bids.

Modules:

- :mod:`~sale_graph.memory.records`: what is stored and returned (bids, similar tasks, pairs).
- :mod:`~sale_graph.memory.pairs`: choosing contrastive pairs (pure).
- :mod:`~sale_graph.memory.store`: :class:`AuctionMemory`, the store on Chroma (layout, concurrency).
- :mod:`~sale_graph.memory.recording`: the rules for recording one auction (pure).
- :mod:`~sale_graph.memory.retention`: the retention limits (count, age) and how retrieval treats graded auctions.
- :mod:`~sale_graph.memory.stats`: counting what the memory holds.
- :mod:`~sale_graph.memory.transfer`: the JSON-lines export format.
- :mod:`~sale_graph.memory.chroma`, :mod:`~sale_graph.memory.vectors`: Chroma clients and
  collections; task-text vectors.
- :mod:`~sale_graph.memory.bridge`: from an auction's graph state to stored records.
- :mod:`~sale_graph.memory.commands`: the ``sale memory ...`` sub-commands.

Importing this package does not import ``chromadb`` (a heavy import): that
happens when a store is opened.
"""

from __future__ import annotations

from sale_graph.memory.errors import MemoryStoreError
from sale_graph.memory.pairs import select_contrastive_pairs
from sale_graph.memory.records import (
    OUTCOMES,
    ROUNDS,
    ContrastivePair,
    ContrastiveResult,
    Outcome,
    ReasonCode,
    Round,
    SimilarTask,
    StrategyRecord,
    strategy_id,
)
from sale_graph.memory.retention import GRADED_POLICIES, GradedPolicy, PruneResult
from sale_graph.memory.store import DEFAULT_MIN_SIMILARITY, AuctionMemory
from sale_graph.memory.transfer import EXPORT_FORMAT, EXPORT_VERSION

__all__ = [
    "DEFAULT_MIN_SIMILARITY",
    "EXPORT_FORMAT",
    "EXPORT_VERSION",
    "GRADED_POLICIES",
    "OUTCOMES",
    "ROUNDS",
    "AuctionMemory",
    "ContrastivePair",
    "ContrastiveResult",
    "GradedPolicy",
    "MemoryStoreError",
    "Outcome",
    "PruneResult",
    "ReasonCode",
    "Round",
    "SimilarTask",
    "StrategyRecord",
    "select_contrastive_pairs",
    "strategy_id",
]

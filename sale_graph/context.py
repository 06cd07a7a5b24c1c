"""Runtime settings of an auction, passed as LangGraph's ``context``.

``graph.invoke(inputs, context=SaleContext(pool="pool.toml"))`` or, from the
LangGraph API / Studio, ``context={"pool": "pool.toml", "max_concurrency": 2}``.
Paths are resolved (and cached by file modification time) when a run starts: the
``prepare`` step calls :meth:`SaleContext.reload_files` (in a worker thread under
``ainvoke``), and the run's later steps reuse what it loaded without touching the
files, so an asyncio run never blocks its event loop on them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

from sale_graph.conversation import DEFAULT_CONVERSATION_MAX_TOKENS
from sale_graph.embedded.models import embedded_pool
from sale_graph.errors import ContextError, unknown_keys_message
from sale_graph.llm.limits import Limiter, run_limiter
from sale_graph.pool import AgentPool, AgentSpec, load_pool, pool_from_dict
from sale_graph.weights import Weights, load_weights, weights_from_dict

AUCTION_PER = ("turn", "thread")
"""The per-turn policies of ``SaleContext.auction_per``."""

CapPhase = Literal["bid", "jury", "execute_step"]
DEFAULT_CAPS: dict[str, int] = {"bid": 1024, "jury": 512, "execute_step": 4096}
"""Token caps for real models (room for a reasoning model's thinking); the embedded pool sets smaller ones."""


@dataclass
class SaleContext:
    """Settings for one auction run: the pool, the weights and every limit.

    Attributes:
        pool: an :class:`AgentPool`, a path to a pool TOML, or ``None`` for the embedded local pool.
        weights: a :class:`Weights`, a path to a weights file, or ``None`` for the documented defaults
            (a cost weight scaled to the pool's prices, see :func:`sale_graph.weights.pool_cost_weight`).
        max_concurrency: most model calls of this run in flight at once (its bid, jury and refinement
            fan-outs). Each endpoint has its own process-wide bound too (the agent's ``max_concurrency``).
        check_endpoints: ping every agent's endpoint before the auction (clear error naming the agent and URL).
        bid_max_tokens: cap on one bid's generation (reasoning included), for every agent; ``None``: each
            agent's own ``bid_max_tokens`` from the pool, else 1024.
        jury_max_tokens: cap on one judge's answer; ``None``: the agent's own, else 512.
        jury_quorum: share of the judges that must score a bid for its value to count (strictly more
            than this share; default 0.5, more than half).
        allow_degraded: continue an auction whose jury misses the quorum, flagged ``degraded`` in the
            state, the CLI and the memory, instead of stopping with an error.
        jury_mode: ``per_bid`` (the method's own: one call per judge and bid, ``|A|^2`` calls) or
            ``batched`` (one call per judge scoring every bid, shuffled per judge; ``|A|`` calls).
        route_only: run the auction (bids, jury, selection, refinement) and stop before executing:
            the state holds the winner, its strategy, the table and the ledger; the memory records
            the auction, and whoever executes reports the outcome with ``AuctionMemory.update_outcome``.
        conversation_max_tokens: budget of a chat turn's earlier turns in its task text, in tokens
            estimated at 4 characters a token (the latest human message is the request, always whole;
            the most recent turns are kept whole, older ones cut, see :mod:`sale_graph.conversation`);
            0 leaves them out.
        auction_per: ``turn`` (a new auction every human turn) or ``thread`` (one auction per thread:
            later turns reuse its winner and strategy, pinned in the state of ``SaleMiddleware`` or
            ``sale_router`` on the thread's checkpointer, with no bids paid). The auction graph itself
            (way 1) runs an auction every run and refuses ``thread``.
        on_execution_error: when the winner's endpoint fails during execution (after its retries):
            ``fallback`` runs the runner-up instead (noted), ``raise`` stops with an ``ExecutionError``.
        refine: let cheaper agents refine their bids from the auction memory.
        memory_dir: Chroma persistent directory of the auction memory (default: under ``$SALE_HOME``).
        memory_url: a Chroma server URL (``http://host:port``) shared by several workers; wins over ``memory_dir``.
        use_memory: read and write the auction memory at all. The memory is opened when the run
            starts, before any model call, so a bad ``memory_dir`` or ``memory_url`` costs nothing.
        memory_max_auctions: retention: after each run, keep at most this many auctions in the memory,
            pruning the oldest unlabelled auctions (outcome unknown) first, then the oldest graded ones
            (``None``: no count limit). The run's note says how many went.
        memory_max_age_days: retention: after each run, remove the auctions recorded more than this many
            days ago (``None``: no age limit). See :mod:`sale_graph.memory.retention`.
        refine_k / refine_min_similarity / refine_max_pairs: contrastive retrieval settings.
        refine_graded: which past auctions refinement learns from, by outcome: ``any`` (the method's
            order), ``first`` (pairs of graded auctions, outcome known, before those of unlabelled ones)
            or ``only`` (unlabelled auctions are never retrieved).
        execute_max_steps: most ReAct model steps for the winner.
        execute_max_tokens: total generated tokens the execution may spend.
        execute_step_max_tokens: cap on one execution step's generation; ``None``: the agent's own, else 4096.
        execute_wall_time_s: wall-clock budget of the execution.
        search_first: open an execution whose tools include ``web_search`` with a search for the task text
            (every domain but ``coding``).
        search: web-search backend config for the executor, e.g. ``{"backend": "local", "path": "docs.jsonl"}``.
        approve_before_execute: pause before ``execute`` for a human to confirm or override the winner.
    """

    pool: AgentPool | str | None = None
    weights: Weights | str | None = None
    max_concurrency: int = 4
    check_endpoints: bool = True
    bid_max_tokens: int | None = None
    jury_max_tokens: int | None = None
    jury_quorum: float = 0.5
    allow_degraded: bool = False
    jury_mode: Literal["per_bid", "batched"] = "per_bid"
    route_only: bool = False
    conversation_max_tokens: int = DEFAULT_CONVERSATION_MAX_TOKENS
    auction_per: Literal["turn", "thread"] = "turn"
    on_execution_error: Literal["fallback", "raise"] = "fallback"
    refine: bool = True
    memory_dir: str | None = None
    memory_url: str | None = None
    use_memory: bool = True
    refine_k: int = 5
    refine_min_similarity: float = 0.88
    refine_max_pairs: int = 3
    refine_graded: Literal["any", "first", "only"] = "any"
    memory_max_auctions: int | None = None
    memory_max_age_days: float | None = None
    execute_max_steps: int = 6
    execute_max_tokens: int = 16384
    execute_step_max_tokens: int | None = None
    execute_wall_time_s: float = 300.0
    search: dict[str, Any] | None = None
    search_first: bool = True
    approve_before_execute: bool = False

    def __new__(cls, *args: Any, **kwargs: Any) -> SaleContext:
        """Refuse unknown settings by name (LangGraph builds the context with ``SaleContext(**dict)``)."""
        unknown = set(kwargs) - set(cls.__dataclass_fields__)
        if unknown:
            raise ContextError(unknown_keys_message(unknown, cls.__dataclass_fields__, "context"))
        return super().__new__(cls)

    def __post_init__(self) -> None:
        if self.max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {self.max_concurrency}")
        for name in ("bid_max_tokens", "jury_max_tokens", "execute_max_steps", "execute_max_tokens", "execute_step_max_tokens"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value}")
        if self.on_execution_error not in ("fallback", "raise"):
            raise ValueError(f"on_execution_error must be 'fallback' or 'raise', got {self.on_execution_error!r}")
        if self.jury_mode not in ("per_bid", "batched"):
            raise ValueError(f"jury_mode must be 'per_bid' or 'batched', got {self.jury_mode!r}")
        if self.auction_per not in AUCTION_PER:
            raise ValueError(f"auction_per must be 'turn' or 'thread', got {self.auction_per!r}")
        if self.conversation_max_tokens < 0:
            raise ValueError(f"conversation_max_tokens must be 0 or more, got {self.conversation_max_tokens}")
        if self.refine_graded not in ("any", "first", "only"):
            raise ValueError(f"refine_graded must be 'any', 'first' or 'only', got {self.refine_graded!r}")
        if self.memory_max_auctions is not None and self.memory_max_auctions < 1:
            raise ValueError(f"memory_max_auctions must be at least 1 (or None for no limit), got {self.memory_max_auctions}")
        if self.memory_max_age_days is not None and not self.memory_max_age_days > 0:
            raise ValueError(f"memory_max_age_days must be a positive number of days (or None), got {self.memory_max_age_days}")
        if not 0.0 <= self.jury_quorum < 1.0:
            raise ValueError(f"jury_quorum is a share of the judges in [0, 1), got {self.jury_quorum}")
        # The pool and weights files this context has loaded, by path: no setting, so no dataclass field.
        self._loaded: dict[tuple[str, str], Any] = {}

    def cap(self, phase: CapPhase, agent: AgentSpec) -> int:
        """Token cap of one call of ``phase`` by ``agent``: this context's setting, else the agent's, else the default.

        The agent's ``max_tokens`` still bounds every call (see :meth:`AgentSpec.chat_model`).
        """
        ours = getattr(self, f"{phase}_max_tokens")
        if ours is not None:
            return int(ours)
        theirs = getattr(agent, f"{phase}_max_tokens")
        return int(theirs) if theirs is not None else DEFAULT_CAPS[phase]

    def resolved_pool(self) -> AgentPool:
        """The pool object (loading the file or the embedded default)."""
        if isinstance(self.pool, AgentPool):
            return self.pool
        if isinstance(self.pool, dict):
            return pool_from_dict(self.pool, source="context.pool")
        if self.pool is None:
            return embedded_pool()
        return cast(AgentPool, self._file(load_pool, self.pool, reload=False))

    def resolved_weights(self) -> Weights:
        """The weights object (loading the file or the defaults), its ``w_c`` scaled to the pool when none is set."""
        if isinstance(self.weights, Weights):
            weights = self.weights
        elif isinstance(self.weights, dict):
            weights = weights_from_dict(self.weights, source="context.weights")
        elif self.weights is None:
            weights = load_weights(None)
        else:
            weights = cast(Weights, self._file(load_weights, self.weights, reload=False))
        return weights.for_prices({a.name: a.price for a in self.resolved_pool().agents})

    def reload_files(self) -> None:
        """Re-read the pool and weights files named by path when they changed since this context loaded them.

        The ``prepare`` step calls it once at the start of every run (in a worker thread
        under ``ainvoke``); the run's later steps then resolve the pool and the weights
        from what it loaded, with no file access, so they never block an event loop.

        Raises:
            PoolError: the pool file is missing or malformed.
            WeightsError: the weights file is missing or malformed.
        """
        if isinstance(self.pool, str):
            self._file(load_pool, self.pool, reload=True)
        if isinstance(self.weights, str):
            self._file(load_weights, self.weights, reload=True)

    def _file(self, loader: Any, path: str, *, reload: bool) -> Any:
        """What ``loader`` read from ``path``: this context's copy, read (or re-read when ``reload``) if needed."""
        key = (loader.__name__, path)
        loaded = getattr(self, "_loaded", None)
        if loaded is None:  # an instance made without __init__
            loaded = self._loaded = {}
        if reload or key not in loaded:
            loaded[key] = _cached(loader, path)
        return loaded[key]

    def run_limiter(self, run_id: str) -> Limiter:
        """This run's fan-out bound (``max_concurrency`` calls in flight), shared by the run's nodes."""
        return run_limiter(run_id, self.max_concurrency)


_cache: dict[tuple[Any, ...], Any] = {}
_cache_lock = threading.Lock()


def _cached(loader: Any, path: str | None) -> Any:
    stamp = None
    if path is not None and Path(path).expanduser().is_file():
        st = Path(path).expanduser().stat()
        stamp = (st.st_mtime_ns, st.st_size)
    key = (loader.__name__, path, stamp)
    with _cache_lock:
        if key not in _cache:
            _cache[key] = loader(path)
        return _cache[key]


def context_from(runtime_context: Any) -> SaleContext:
    """Normalise what LangGraph hands a node (a SaleContext, a dict or None) to a SaleContext."""
    if isinstance(runtime_context, SaleContext):
        return runtime_context
    if runtime_context is None:
        return SaleContext()
    if isinstance(runtime_context, dict):
        return SaleContext(**runtime_context)  # unknown keys: ContextError naming the allowed ones
    raise TypeError(f"context must be a SaleContext or a dict, got {type(runtime_context).__name__}")



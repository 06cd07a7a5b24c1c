"""Objects the graph's nodes use that are not plain settings: model factory, tools, memory.

Settings travel in the runtime context (:class:`~sale_graph.context.SaleContext`);
live objects (a chat-model factory, LangChain tools, an open memory) are given
to :func:`~sale_graph.graph.build_sale_graph` once and shared by its nodes.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from sale_graph.context import SaleContext
from sale_graph.llm import ModelFactory, openai_factory
from sale_graph.memory import AuctionMemory, MemoryStoreError
from sale_graph.storage.paths import data_path
from sale_graph.tools.defaults import default_tool_names, default_tools


@dataclass
class SaleServices:
    """Live collaborators of the nodes.

    Attributes:
        model_factory: builds each agent's chat model (default: ChatOpenAI from the pool config).
        tools: tools for the executor; ``None`` means the defaults for the task's domain.
        memory: an auction memory; ``None`` opens the one the context names when memory is on.
    """

    model_factory: ModelFactory = openai_factory
    tools: list[Any] | None = None
    memory: AuctionMemory | None = None
    _memories: dict[tuple[str | None, str | None], AuctionMemory] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def tools_for(self, domain: str | None, ctx: SaleContext) -> list[Any]:
        """The executor's tools: those given to the graph, else the defaults for ``domain``."""
        if self.tools is not None:
            return list(self.tools)
        return default_tools(domain, ctx.search)

    def tool_names_for(self, domain: str | None, search: dict[str, Any] | None = None) -> list[str]:
        """Names of the tools the executor will have, for the bid prompt."""
        if self.tools is not None:
            return [getattr(t, "name", str(t)) for t in self.tools]
        return default_tool_names(domain, search)

    def memory_for(self, ctx: SaleContext) -> AuctionMemory | None:
        """The auction memory for this run, or ``None`` when memory is off.

        The ``prepare`` node calls it before any model call, so a memory that cannot
        be opened stops the run before anything is paid for.

        Raises:
            MemoryStoreError: the memory the context names cannot be opened (the
                message names the setting and its value).
        """
        if not ctx.use_memory:
            return None
        if self.memory is not None:
            return self.memory
        key = (ctx.memory_dir, ctx.memory_url)
        with self._lock:
            if key not in self._memories:
                self._memories[key] = open_memory(ctx.memory_dir, ctx.memory_url)
            return self._memories[key]


def open_memory(memory_dir: str | None, memory_url: str | None) -> AuctionMemory:
    """Open the auction memory a run's settings name: the Chroma server at ``memory_url``, else ``memory_dir``.

    Args:
        memory_dir: a Chroma persistent directory (``None``: the default under ``$SALE_HOME``).
        memory_url: a Chroma server URL; wins over ``memory_dir``.

    Returns:
        The opened memory.

    Raises:
        MemoryStoreError: it cannot be opened: a bad URL, a server that does not answer,
            a directory that cannot be created or read, collections of another embedder.
    """
    if memory_url:
        where = f"memory_url={memory_url!r} (sale run --chroma-url)"
    elif memory_dir:
        where = f"memory_dir={memory_dir!r} (sale run --memory-dir)"
    else:
        where = f"the default memory directory {data_path('memory')}"
    try:
        return AuctionMemory.from_url(memory_url) if memory_url else AuctionMemory(path=memory_dir)
    except Exception as exc:  # any failure to open a store the user named is their input at fault: say which
        raise MemoryStoreError(
            f"cannot open the auction memory at {where}: {type(exc).__name__}: {' '.join(str(exc).split())}; "
            "fix the setting, or run without the memory (use_memory=False, sale run --no-memory)"
        ) from exc

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
from sale_graph.memory import AuctionMemory
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
        """The auction memory for this run, or ``None`` when memory is off."""
        if not ctx.use_memory:
            return None
        if self.memory is not None:
            return self.memory
        key = (ctx.memory_dir, ctx.memory_url)
        with self._lock:
            if key not in self._memories:
                if ctx.memory_url:
                    self._memories[key] = AuctionMemory.from_url(ctx.memory_url)
                else:
                    self._memories[key] = AuctionMemory(path=ctx.memory_dir)
            return self._memories[key]

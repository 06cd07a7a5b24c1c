"""The endpoint's limits and the agent's retry policy around the model calls of a LangChain agent.

:class:`EndpointPolicy` is an ``AgentMiddleware``: in
``create_agent(model, tools, middleware=[EndpointPolicy(agent)])`` every model call
holds the endpoint's concurrency slot (:mod:`sale_graph.llm.limits`) and is retried
by the agent's policy (:mod:`sale_graph.llm.retries`), like the auction's own calls.
Retried failures go to the list given to :func:`collecting_retries` around the
agent's run (through a context variable), so one compiled agent serves every run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from langchain.agents.middleware import AgentMiddleware, ModelRequest

from sale_graph.llm.limits import endpoint_limiter
from sale_graph.llm.retries import acall_with_retries, call_with_retries

if TYPE_CHECKING:  # the pool builds its models from this package (sale_graph.llm.chat_openai): types only
    from sale_graph.pool import AgentSpec

_retries: ContextVar[list[str] | None] = ContextVar("sale_execute_retries", default=None)


def report_retry(line: str) -> None:
    """Add one retried failure to the list :func:`collecting_retries` set up (dropped outside one)."""
    sink = _retries.get()
    if sink is not None:
        sink.append(line)


@contextlib.contextmanager
def collecting_retries(sink: list[str]) -> Iterator[None]:
    """Collect into ``sink`` the retries :func:`report_retry` is told of within the ``with`` block."""
    token = _retries.set(sink)
    try:
        yield
    finally:
        _retries.reset(token)


class EndpointPolicy(AgentMiddleware):
    """Holds the endpoint's concurrency slot for each model call of an agent and retries it by the agent's policy.

    Retried failures go to the running execution's list (see :func:`collecting_retries`),
    so one compiled agent serves every run.
    """

    def __init__(self, agent: AgentSpec) -> None:
        super().__init__()
        self.agent = agent
        self.on_retry = report_retry

    def wrap_model_call(self, request: ModelRequest, handler: Callable[[ModelRequest], Any]) -> Any:
        """Call the model, retrying failures another attempt may fix."""
        endpoint = (self.agent.name, self.agent.base_url, self.agent.model)
        limiter = endpoint_limiter(self.agent)

        def once() -> Any:
            with limiter.hold():
                return handler(request)

        return call_with_retries(once, max_retries=self.agent.max_retries, on_retry=self.on_retry, endpoint=endpoint)

    async def awrap_model_call(self, request: ModelRequest, handler: Callable[[ModelRequest], Awaitable[Any]]) -> Any:
        """Await the model, retrying failures another attempt may fix."""
        endpoint = (self.agent.name, self.agent.base_url, self.agent.model)
        limiter = endpoint_limiter(self.agent)

        async def once() -> Any:
            async with limiter.ahold():
                return await handler(request)

        return await acall_with_retries(once, max_retries=self.agent.max_retries, on_retry=self.on_retry, endpoint=endpoint)

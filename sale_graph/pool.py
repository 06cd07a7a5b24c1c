"""The agent pool: who can bid, where they live and what they cost.

A pool is loaded from a TOML file::

    [[agents]]
    name = "qwen3-4b"                       # unique, shown in tables and the ledger
    model = "Qwen/Qwen3-4B"                 # model id the endpoint expects
    base_url = "http://localhost:8000/v1"   # any OpenAI-compatible endpoint
    api_key_env = "VLLM_API_KEY"            # optional: NAME of the env var holding the key
    price_input = 0.05                      # dollars per 1M input tokens
    price_output = 0.05                     # dollars per 1M output tokens
    max_tokens = 512                        # optional cap on one generation
    extra_body = { chat_template_kwargs = { enable_thinking = false } }  # optional, sent as is

Optional fields (see docs/pools.md for each, with a vLLM / Qwen3 example):

* ``temperature``; ``timeout_s`` (per attempt); ``max_retries`` (retried failures per call:
  429 / 5xx / network, honouring ``Retry-After``; default 3, so 4 attempts);
* ``max_concurrency``: most calls in flight to this agent's endpoint, shared by every run
  in the process (0, the default, means no bound: set what your server can take);
* ``logprobs`` / ``top_logprobs`` (ask for log-probs for the bid entropy);
* phase caps ``bid_max_tokens``, ``jury_max_tokens``, ``execute_step_max_tokens``
  (the agent's own; the run's context can override them; ``max_tokens`` is a hard
  ceiling on every call);
* ``auction_extra_body`` / ``execute_extra_body``: request fields merged over
  ``extra_body`` for the auction's calls (bid, jury, refine) or the executor's, e.g.
  ``auction_extra_body = { chat_template_kwargs = { enable_thinking = false } }`` to
  let a Qwen3 agent bid and judge without thinking and still think when it executes;
* ``structured_output`` (``auto``, ``json_schema``, ``json_object``, ``none``): how a
  judge is asked for a JSON score; ``auto`` detects it once per endpoint;
* ``token_limit_field`` (``max_tokens`` or ``max_completion_tokens``, for OpenAI reasoning
  models); ``tool_calling`` (``native``, or ``text`` for models that make no native tool
  calls: ReAct-style text actions, see :mod:`sale_graph.llm.text_tool_calling`).

Prices live only in the config, never in code. Every agent becomes a
:class:`langchain_openai.ChatOpenAI` (:meth:`AgentSpec.chat_model`).
"""

from __future__ import annotations

import os
import time
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

import httpx

from sale_graph.errors import PoolError
from sale_graph.llm.async_http import loop_local_async_client, proxies_in_environment
from sale_graph.llm.chat_openai import SaleChatOpenAI

TokenLimitField = Literal["max_tokens", "max_completion_tokens"]
ToolCalling = Literal["native", "text"]
StructuredOutput = Literal["auto", "json_schema", "json_object", "none"]
STRUCTURED_OUTPUT_MODES = ("auto", "json_schema", "json_object", "none")
AUCTION_PHASES = ("bid", "jury", "refine")


@dataclass(frozen=True)
class AgentSpec:
    """One agent of the pool: a model behind an OpenAI-compatible endpoint, with its prices.

    ``price_output`` (dollars per 1M generated tokens) is the ``price(a_i)`` of the
    SALE cost ``C_i = w_c * price(a_i) * |s_i|``: a strategy is generated text and
    the execution it predicts is dominated by generated tokens. Both prices are used
    for the dollar ledger.
    """

    name: str
    model: str
    base_url: str
    price_input: float
    price_output: float
    api_key_env: str | None = None
    max_tokens: int | None = None
    temperature: float = 0.2
    timeout_s: float = 120.0
    logprobs: bool = True
    top_logprobs: int = 5
    token_limit_field: TokenLimitField = "max_tokens"
    extra_body: dict[str, Any] = field(default_factory=dict)
    tool_calling: ToolCalling = "native"
    max_retries: int = 3
    bid_max_tokens: int | None = None
    jury_max_tokens: int | None = None
    execute_step_max_tokens: int | None = None
    auction_extra_body: dict[str, Any] = field(default_factory=dict)
    execute_extra_body: dict[str, Any] = field(default_factory=dict)
    structured_output: StructuredOutput = "auto"
    max_concurrency: int = 0

    @property
    def price(self) -> float:
        """The per-1M-token price used in the auction's cost term (the output price)."""
        return self.price_output

    def call_cost(self, input_tokens: int, output_tokens: int) -> float:
        """Dollars for one call with these token counts."""
        return (input_tokens * self.price_input + output_tokens * self.price_output) / 1e6

    def api_key(self) -> str:
        """The API key from the environment, or a placeholder for local servers that need none."""
        if self.api_key_env:
            key = os.environ.get(self.api_key_env)
            if not key:
                raise PoolError(
                    f"agent {self.name!r}: environment variable {self.api_key_env} is not set; "
                    f"export it with the API key for {self.base_url}"
                )
            return key
        return "not-needed"

    def request_fields(self, phase: str | None) -> dict[str, Any]:
        """``extra_body`` for a call of ``phase``: the agent's fields with the phase's merged over them."""
        fields_: dict[str, Any] = dict(self.extra_body)
        if phase in AUCTION_PHASES:
            fields_ = _merge(fields_, self.auction_extra_body)
        elif phase == "execute":
            fields_ = _merge(fields_, self.execute_extra_body)
        return fields_

    def chat_model(
        self,
        *,
        max_tokens: int | None = None,
        logprobs: bool | None = None,
        temperature: float | None = None,
        stop: list[str] | None = None,
        phase: str | None = None,
    ) -> Any:
        """Build the chat model of this agent for one phase, with a hard generation cap.

        ``max_tokens`` is the smaller of the call's cap and the agent's own. The cap
        is sent in ``extra_body`` under ``token_limit_field`` because langchain-openai
        1.x sends ``max_completion_tokens``, which llama.cpp's Python server ignores.
        The model is a :class:`~sale_graph.llm.chat_openai.SaleChatOpenAI` (keeps separated
        reasoning), asks for token usage in streams too (``stream_usage``), and leaves
        retries to :mod:`sale_graph.llm.retries` so each one is recorded.
        """
        caps = [c for c in (max_tokens, self.max_tokens) if c is not None]
        extra_body: dict[str, Any] = self.request_fields(phase)
        if caps:
            extra_body[self.token_limit_field] = int(min(caps))
        want_logprobs = self.logprobs if logprobs is None else (logprobs and self.logprobs)
        kwargs: dict[str, Any] = {
            "model": self.model,
            "base_url": self.base_url,
            "api_key": self.api_key(),
            "temperature": self.temperature if temperature is None else temperature,
            "timeout": self.timeout_s,
            "max_retries": 0,
            "stream_usage": True,
            "extra_body": extra_body or None,
        }
        if want_logprobs:
            kwargs["logprobs"] = True
            kwargs["top_logprobs"] = self.top_logprobs
        if stop:
            kwargs["stop"] = stop
        # Async calls go through a client that keeps connections per event loop (a cached model then works
        # under every asyncio.run, one loop after another); blocking calls keep langchain_openai's client.
        kwargs["http_async_client"] = loop_local_async_client(self.timeout_s, (self.base_url.rstrip("/"), self.model))
        if proxies_in_environment():
            kwargs["http_socket_options"] = ()  # keep httpx's proxies from the environment for blocking calls too
        return SaleChatOpenAI(**kwargs)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` merged into ``base``, nested tables merged key by key."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


@dataclass(frozen=True)
class AgentPool:
    """An ordered, validated set of agents with unique names."""

    agents: tuple[AgentSpec, ...]
    source: str = "<memory>"

    def __post_init__(self) -> None:
        if not self.agents:
            raise PoolError(f"{self.source}: the pool has no agents; add at least one [[agents]] table")
        seen: set[str] = set()
        for agent in self.agents:
            if agent.name in seen:
                raise PoolError(f"{self.source}: duplicate agent name {agent.name!r}; names must be unique")
            seen.add(agent.name)

    @property
    def names(self) -> list[str]:
        """Agent names in pool order."""
        return [a.name for a in self.agents]

    def get(self, name: str) -> AgentSpec:
        """The agent called ``name``; a clear error if there is none."""
        for agent in self.agents:
            if agent.name == name:
                return agent
        raise PoolError(f"no agent named {name!r} in pool {self.source}; known: {', '.join(self.names)}")

    def by_price(self) -> list[AgentSpec]:
        """Agents from cheapest to dearest (ties by name, so the order is deterministic)."""
        return sorted(self.agents, key=lambda a: (a.price, a.name))

    def to_dict(self) -> dict[str, Any]:
        """A TOML/JSON-ready dict that :func:`pool_from_dict` reads back."""
        return {"agents": [{k: v for k, v in asdict(a).items() if v is not None} for a in self.agents]}


_FIELDS = {f.name: f for f in fields(AgentSpec)}


def _agent_from_dict(raw: dict[str, Any], index: int, source: str) -> AgentSpec:
    label = f"{source}: agents[{index}]"
    if not isinstance(raw, dict):
        raise PoolError(f"{label} must be a table, got {type(raw).__name__}")
    if "name" in raw:
        label = f"{source}: agent {raw['name']!r}"
    if "api_key" in raw:
        raise PoolError(f"{label}: never put a key in the pool file; export it and name the variable in api_key_env")
    unknown = sorted(set(raw) - set(_FIELDS))
    if unknown:
        raise PoolError(f"{label}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(_FIELDS)}")
    missing = [n for n in ("name", "model", "base_url", "price_input", "price_output") if n not in raw]
    if missing:
        hint = " (prices are dollars per 1M tokens)" if any(m.startswith("price") for m in missing) else ""
        raise PoolError(f"{label}: missing required field(s) {', '.join(missing)}{hint}")
    values = dict(raw)
    for key in ("price_input", "price_output", "temperature", "timeout_s"):
        if key in values:
            v = values[key]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                raise PoolError(f"{label}: {key} must be a non-negative number, got {v!r}")
            values[key] = float(v)
    for key in ("max_tokens", "top_logprobs", "bid_max_tokens", "jury_max_tokens", "execute_step_max_tokens"):
        if key in values:
            v = values[key]
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise PoolError(f"{label}: {key} must be a positive integer, got {v!r}")
    for key in ("max_retries", "max_concurrency"):
        if key in values:
            v = values[key]
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise PoolError(f"{label}: {key} must be a non-negative integer, got {v!r}")
    for key in ("name", "model", "base_url"):
        if not isinstance(values[key], str) or not values[key].strip():
            raise PoolError(f"{label}: {key} must be a non-empty string")
    parsed = urlparse(values["base_url"])
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise PoolError(f"{label}: base_url {values['base_url']!r} is not an http(s) URL")
    for key in ("extra_body", "auction_extra_body", "execute_extra_body"):
        if key in values and not isinstance(values[key], dict):
            raise PoolError(f"{label}: {key} must be a table of request fields")
    if values.get("structured_output", "auto") not in STRUCTURED_OUTPUT_MODES:
        allowed = ", ".join(STRUCTURED_OUTPUT_MODES)
        raise PoolError(f"{label}: structured_output must be one of {allowed}, got {values['structured_output']!r}")
    if values.get("tool_calling", "native") not in ("native", "text"):
        raise PoolError(f"{label}: tool_calling must be 'native' or 'text', got {values['tool_calling']!r}")
    if values.get("token_limit_field", "max_tokens") not in ("max_tokens", "max_completion_tokens"):
        raise PoolError(f"{label}: token_limit_field must be 'max_tokens' or 'max_completion_tokens'")
    return AgentSpec(**values)


def pool_from_dict(data: dict[str, Any], source: str = "<dict>") -> AgentPool:
    """Validate a parsed pool config and build the pool; errors name the file and the agent."""
    if not isinstance(data, dict):
        raise PoolError(f"{source}: a pool config is a table with an 'agents' array")
    unknown = sorted(set(data) - {"agents", "source"})  # "source": a serialised AgentPool's label
    if unknown:
        raise PoolError(f"{source}: unknown top-level key(s) {', '.join(unknown)}; expected only [[agents]]")
    raw_agents = data.get("agents")
    if not isinstance(raw_agents, list) or not raw_agents:
        raise PoolError(f"{source}: no agents; add one [[agents]] table per agent")
    return AgentPool(tuple(_agent_from_dict(a, i, source) for i, a in enumerate(raw_agents)), source=source)


def load_pool(path: str | os.PathLike[str]) -> AgentPool:
    """Load and validate a pool from a TOML file.

    The embedded default pool is :func:`sale_graph.embedded.embedded_pool`; callers that
    mean it (the context with ``pool=None``, the CLI without ``--pool``) ask for it.

    Raises :class:`PoolError` naming the file, the agent and the field at fault.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise PoolError(f"pool file {str(p)!r} does not exist; pass a TOML file with [[agents]] tables")
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise PoolError(f"{p}: not valid TOML: {exc}") from exc
    return pool_from_dict(data, source=str(p))


@dataclass
class EndpointStatus:
    """The result of pinging one agent's endpoint."""

    agent: str
    url: str
    ok: bool
    detail: str
    latency_s: float = 0.0
    models: list[str] = field(default_factory=list)


def ping_agent(agent: AgentSpec, timeout_s: float = 5.0) -> EndpointStatus:
    """GET ``{base_url}/models`` and check that the agent's model is served there."""
    url = agent.base_url.rstrip("/") + "/models"
    headers = {}
    if agent.api_key_env and os.environ.get(agent.api_key_env):
        headers["Authorization"] = f"Bearer {os.environ[agent.api_key_env]}"
    start = time.perf_counter()
    try:
        resp = httpx.get(url, headers=headers, timeout=timeout_s)
    except httpx.HTTPError as exc:
        return EndpointStatus(agent.name, url, False, f"unreachable: {type(exc).__name__}: {exc}")
    latency = time.perf_counter() - start
    if resp.status_code != 200:
        return EndpointStatus(agent.name, url, False, f"HTTP {resp.status_code}: {resp.text[:200]}", latency)
    try:
        models = [m.get("id", "") for m in resp.json().get("data", [])]
    except ValueError:
        return EndpointStatus(agent.name, url, False, "the /models answer is not JSON", latency)
    if models and agent.model not in models:
        return EndpointStatus(
            agent.name, url, False, f"model {agent.model!r} not served here (serves: {', '.join(models)})", latency, models
        )
    return EndpointStatus(agent.name, url, True, "ok", latency, models)


def check_pool(pool: AgentPool, timeout_s: float = 5.0) -> list[EndpointStatus]:
    """Ping every agent; raise :class:`PoolError` naming each agent and URL that failed."""
    statuses = [ping_agent(a, timeout_s) for a in pool.agents]
    bad = [s for s in statuses if not s.ok]
    if bad:
        lines = "; ".join(f"agent {s.agent!r} at {s.url}: {s.detail}" for s in bad)
        raise PoolError(f"endpoint check failed for {lines}. Start the server or fix base_url in {pool.source}")
    return statuses

"""Pool config loading and validation: every error names the file, the agent and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from sale_graph.errors import PoolError
from sale_graph.pool import AgentSpec, check_pool, load_pool, pool_from_dict

GOOD = """
[[agents]]
name = "small"
model = "Qwen/Qwen3-4B"
base_url = "http://127.0.0.1:8000/v1"
price_input = 0.05
price_output = 0.05

[[agents]]
name = "large"
model = "Qwen/Qwen3-32B"
base_url = "http://127.0.0.1:8001/v1"
api_key_env = "MY_KEY"
price_input = 0.36
price_output = 0.36
max_tokens = 256
extra_body = { chat_template_kwargs = { enable_thinking = false } }
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "pool.toml"
    p.write_text(text)
    return p


def test_loads_valid_pool(tmp_path: Path) -> None:
    pool = load_pool(write(tmp_path, GOOD))
    assert pool.names == ["small", "large"]
    assert [a.name for a in pool.by_price()] == ["small", "large"]
    large = pool.get("large")
    assert large.price == 0.36 and large.max_tokens == 256 and large.api_key_env == "MY_KEY"
    assert large.extra_body == {"chat_template_kwargs": {"enable_thinking": False}}
    assert large.call_cost(1_000_000, 1_000_000) == pytest.approx(0.72)


@pytest.mark.parametrize(
    ("mutation", "message"),
    [
        (lambda s: s.replace('price_output = 0.05\n', '', 1), "agent 'small': missing required field(s) price_output"),
        (lambda s: s.replace('name = "large"', 'name = "small"'), "duplicate agent name 'small'"),
        (lambda s: s.replace('max_tokens = 256', 'max_tokenz = 256'), "agent 'large': unknown field(s) max_tokenz"),
        (lambda s: s.replace('price_input = 0.36', 'price_input = -1'), "price_input must be a non-negative number"),
        (lambda s: s.replace('http://127.0.0.1:8000/v1', 'localhost:8000'), "is not an http(s) URL"),
        (lambda s: s.replace('api_key_env = "MY_KEY"', 'api_key = "sk-123"'), "never put a key in the pool file"),
        (lambda s: s + "\n[settings]\nx = 1\n", "unknown top-level key(s) settings"),
        (lambda s: "agents = []", "no agents"),
        (lambda s: s.replace("[[agents]]", "[[agents]", 1), "not valid TOML"),
    ],
)
def test_errors_name_the_fault(tmp_path: Path, mutation, message: str) -> None:
    path = write(tmp_path, mutation(GOOD))
    with pytest.raises(PoolError) as info:
        load_pool(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_missing_file() -> None:
    with pytest.raises(PoolError, match="does not exist"):
        load_pool("/nonexistent/pool.toml")


def test_missing_api_key_env_is_named(monkeypatch) -> None:
    monkeypatch.delenv("MY_KEY", raising=False)
    spec = AgentSpec(name="a", model="m", base_url="http://127.0.0.1:1/v1", price_input=1, price_output=1, api_key_env="MY_KEY")
    with pytest.raises(PoolError, match="MY_KEY is not set"):
        spec.api_key()
    monkeypatch.setenv("MY_KEY", "secret")
    assert spec.api_key() == "secret"


def test_max_tokens_goes_in_extra_body() -> None:
    spec = AgentSpec(name="a", model="m", base_url="http://127.0.0.1:1/v1", price_input=1, price_output=1, max_tokens=100,
                     extra_body={"repeat_penalty": 1.3})
    model = spec.chat_model(max_tokens=40)
    assert model.extra_body == {"repeat_penalty": 1.3, "max_tokens": 40}
    assert spec.chat_model(max_tokens=400).extra_body["max_tokens"] == 100
    assert model.logprobs is True and model.top_logprobs == 5


def test_unreachable_endpoint_names_agent_and_url() -> None:
    # Port 9 on loopback: nothing listens, the connection is refused at once.
    pool = pool_from_dict({"agents": [{"name": "ghost", "model": "m", "base_url": "http://127.0.0.1:9/v1",
                                       "price_input": 1, "price_output": 1}]}, source="inline")
    with pytest.raises(PoolError) as info:
        check_pool(pool, timeout_s=2)
    assert "agent 'ghost' at http://127.0.0.1:9/v1/models" in str(info.value)

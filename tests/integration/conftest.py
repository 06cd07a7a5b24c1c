"""Fixtures for integration tests: the real embedded llama.cpp servers on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def embedded_server() -> Iterator[object]:
    """Start the embedded model servers once per session (reusing ones already running)."""
    from sale_graph.local_server import EmbeddedServer

    server = EmbeddedServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def embedded_pool(embedded_server: object):
    from sale_graph.local_server import embedded_pool

    return embedded_pool()

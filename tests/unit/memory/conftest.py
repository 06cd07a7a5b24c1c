"""Fixtures of the memory's unit tests: a fresh in-process Chroma memory per test."""

from __future__ import annotations

import uuid

import pytest

from sale_graph.memory import AuctionMemory
from tests.unit.memory.helpers import BagOfWordsEmbeddings


@pytest.fixture
def memory() -> AuctionMemory:
    import chromadb
    from chromadb.config import Settings

    client = chromadb.EphemeralClient(settings=Settings(anonymized_telemetry=False))
    # EphemeralClient instances share one in-process system: a unique prefix isolates each test.
    return AuctionMemory(
        client=client, embeddings=BagOfWordsEmbeddings(), collection_prefix=f"t{uuid.uuid4().hex[:12]}"
    )

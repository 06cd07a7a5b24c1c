"""Chroma plumbing for the auction memory: clients, the two collections, paged scans.

``chromadb`` is imported only when a client is made: it is a heavy import
(seconds), and importing :mod:`sale_graph.memory` (for the record types, or the
CLI's argument parser) must not pay for it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from langchain_core.embeddings import Embeddings

from sale_graph.memory.errors import MemoryStoreError

_PAGE = 2000  # rows per Chroma get() page when scanning a collection


def embedder_id(embeddings: Any) -> str:
    """A stable name for an embedder, stored with the collections to catch a switch of model.

    Args:
        embeddings: a LangChain ``Embeddings`` or a Chroma embedding function.

    Returns:
        The model's name for LangChain embeddings (with `` symmetric`` when it
        embeds both sides alike), else ``chroma:`` and the function's name.
    """
    if isinstance(embeddings, Embeddings):
        name = getattr(embeddings, "model_name", None) or getattr(embeddings, "model", None)
        label = str(name) if name else f"{type(embeddings).__module__}.{type(embeddings).__qualname__}"
        if getattr(embeddings, "symmetric", None) is True:
            label += " symmetric"
        return label
    namer = getattr(embeddings, "name", None)
    if callable(namer):
        try:
            return f"chroma:{namer()}"
        except TypeError:
            pass
    return f"chroma:{type(embeddings).__module__}.{type(embeddings).__qualname__}"


def chroma_settings() -> Any:
    """Chroma client settings: no telemetry."""
    from chromadb.config import Settings  # lazy: chromadb is a heavy import (see the module docstring)

    return Settings(anonymized_telemetry=False)


def persistent_client(path: Path) -> Any:
    """A ``chromadb.PersistentClient`` on ``path`` (one writing process at a time)."""
    import chromadb  # lazy: chromadb is a heavy import (see the module docstring)

    return chromadb.PersistentClient(path=str(path), settings=chroma_settings())


def http_client(url: str) -> tuple[Any, str]:
    """A client of the Chroma server at ``url``, checked with a heartbeat.

    Args:
        url: ``http://host:port`` or ``https://host:port`` (port 8000 / 443 when left out).

    Returns:
        The client and the server's location for messages (scheme, host and port).

    Raises:
        ValueError: ``url`` is not an http(s) URL with a host.
        MemoryStoreError: the server does not answer.
    """
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(f"Chroma URL {url!r} must look like http://host:port (or https://host:port)")
    port = parsed.port or (443 if parsed.scheme == "https" else 8000)
    import chromadb  # lazy: chromadb is a heavy import (see the module docstring)

    try:
        client = chromadb.HttpClient(host=parsed.hostname, port=port, ssl=parsed.scheme == "https", settings=chroma_settings())
        client.heartbeat()
    except Exception as exc:
        raise MemoryStoreError(
            f"cannot reach the Chroma server at {url!r} ({type(exc).__name__}: {exc}); start one with "
            f"`chroma run --path DIR --host {parsed.hostname} --port {port}` or fix the URL"
        ) from exc
    return client, f"{parsed.scheme}://{parsed.hostname}:{port}"


def open_collections(client: Any, prefix: str, embedding_function: Any, embedder: str, location: str) -> tuple[Any, Any]:
    """Open (or create) the ``<prefix>_tasks`` and ``<prefix>_strategies`` collections, in cosine space.

    Args:
        client: the Chroma client.
        prefix: the collections' name prefix.
        embedding_function: the Chroma embedding function to attach.
        embedder: its :func:`embedder_id`, stored on new collections and checked on existing ones.
        location: the store's name, for messages.

    Returns:
        The tasks collection and the strategies collection.

    Raises:
        MemoryStoreError: a collection was built with another embedder.
    """
    opened = []
    for name in (f"{prefix}_tasks", f"{prefix}_strategies"):
        try:
            col = client.get_or_create_collection(
                name,
                embedding_function=embedding_function,
                configuration={"hnsw": {"space": "cosine"}},
                metadata={"sale_embedder": embedder},
            )
        except ValueError as exc:
            if "conflict" not in str(exc).lower():
                raise
            raise MemoryStoreError(
                f"collection {name!r} at {location} was created with another embedding function "
                f"({exc}); open it with the embedder it was built with, or use another memory "
                f"directory / collection_prefix and import an export there"
            ) from exc
        stored = (col.metadata or {}).get("sale_embedder")
        if stored != embedder:
            raise MemoryStoreError(
                f"collection {name!r} at {location} holds embeddings from {stored!r}, but this "
                f"memory was opened with {embedder!r}; similarities across models are "
                f"meaningless. Open it with the original embedder, or use another memory directory / "
                f"collection_prefix and `import` an export there (import re-embeds the tasks)"
            )
        opened.append(col)
    tasks, strategies = opened
    return tasks, strategies


def scan(collection: Any, include: list[str]) -> Iterator[tuple[str, str | None, Mapping[str, Any]]]:
    """Every entry of a collection as (id, document, metadata), read page by page.

    Args:
        collection: the Chroma collection.
        include: what to read (``"documents"``, ``"metadatas"``); what is left
            out comes back as ``None`` documents or empty metadata.

    Yields:
        One (id, document, metadata) per entry.
    """
    offset = 0
    while True:
        page = collection.get(include=include, limit=_PAGE, offset=offset)
        ids = page["ids"]
        if not ids:
            return
        docs = page.get("documents") or [None] * len(ids)
        metas = page.get("metadatas") or [{}] * len(ids)
        yield from zip(ids, docs, metas, strict=True)
        offset += len(ids)


def task_filter(domain: str | None, exclude: Sequence[str], graded_only: bool = False) -> dict[str, Any] | None:
    """The ``where`` filter of a similarity query on the tasks collection.

    Args:
        domain: only past tasks recorded with this domain ("" matches only those
            recorded with no domain); ``None`` for every domain.
        exclude: auction ids to leave out.
        graded_only: only auctions whose outcome is known (not ``unknown``).

    Returns:
        The filter, or ``None`` when nothing is filtered.
    """
    clauses: list[dict[str, Any]] = []
    if domain is not None:
        clauses.append({"domain": domain})
    if exclude:
        clauses.append({"auction_id": {"$nin": list(exclude)}})
    if graded_only:
        clauses.append({"outcome": {"$ne": "unknown"}})
    if len(clauses) > 1:
        return {"$and": clauses}
    return clauses[0] if clauses else None


def max_batch(client: Any) -> int:
    """The most entries the client takes in one write (1000 when it does not say)."""
    getter = getattr(client, "get_max_batch_size", None)
    return int(getter()) if callable(getter) else 1000

"""The on-disk parts of a corpus index: the Chroma chunk collection, the build manifest and the build lock.

An index folder (``data_path("corpus", <name>)``) holds a Chroma
``PersistentClient`` database with one collection of chunk vectors, a
``manifest.json`` describing the last build, and ``index.lock``, held while a
process builds or checks the index.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from sale_graph.storage.text_embedder import as_chroma_function

__all__ = [
    "INDEX_FORMAT",
    "COLLECTION",
    "file_lock",
    "read_manifest",
    "write_manifest",
    "chroma_client",
    "open_collection",
    "open_compatible_collection",
    "existing_digests",
    "delete_chunks",
]

#: Bump when the chunk/manifest format changes so old indexes are rebuilt.
INDEX_FORMAT = 1
COLLECTION = "chunks"
_PAGE = 5000  # ids per Chroma get/delete call, for large collections


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` so two processes never build the same index at once.

    Args:
        path: The lock file (created if missing).

    Yields:
        Nothing; the lock is held inside the ``with`` block.
    """
    try:
        import fcntl  # platform-specific: POSIX only
    except ImportError:  # pragma: no cover - Windows: no inter-process lock, single-process use only
        yield
        return
    with path.open("a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def read_manifest(path: Path) -> dict[str, Any] | None:
    """The build manifest at ``path``.

    Args:
        path: The ``manifest.json`` file.

    Returns:
        The manifest, None before the first build, ``{"corrupt": True}`` if it cannot be parsed.
    """
    if not path.exists():
        return None
    try:
        manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        # A manifest cut short by a crash: treat the index as unbuilt (it is rebuilt, and says why).
        return {"corrupt": True}
    return manifest


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    """Write the manifest atomically (a temporary file renamed over it).

    Args:
        path: The ``manifest.json`` file.
        manifest: JSON-serialisable build description.
    """
    tmp = path.with_suffix(f".json.{os.getpid()}.{threading.get_ident()}.tmp")  # unique: concurrent writers
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
    tmp.replace(path)


def chroma_client(index_dir: Path) -> Any:
    """A Chroma client on the database of an index folder (telemetry off).

    Args:
        index_dir: The index folder.

    Returns:
        A ``chromadb.PersistentClient``.
    """
    import chromadb  # lazy: a heavy import (about 30k objects) that runs without a corpus never need
    from chromadb.config import Settings

    return chromadb.PersistentClient(path=str(index_dir / "chroma"), settings=Settings(anonymized_telemetry=False))


def open_collection(client: Any, embeddings: Any, embedder_id: str) -> Any:
    """The chunk collection (created if missing), tagged with the embedder and the index format.

    Args:
        client: A Chroma client.
        embeddings: The LangChain embeddings the vectors come from.
        embedder_id: A string naming the embedder, stored in the collection's metadata.

    Returns:
        The Chroma collection (cosine space).
    """
    return client.get_or_create_collection(
        COLLECTION,
        embedding_function=as_chroma_function(embeddings),
        configuration={"hnsw": {"space": "cosine"}},
        metadata={"embedder": embedder_id, "format": INDEX_FORMAT},
    )


def open_compatible_collection(client: Any, embeddings: Any, embedder_id: str, force: bool) -> tuple[Any, bool]:
    """Open the collection, recreating it empty when forced or built by another embedder/format.

    The embedder is recorded in the collection itself, so even an interrupted
    first build (no manifest yet) resumes only if its vectors are compatible.

    Args:
        client: A Chroma client.
        embeddings: The LangChain embeddings the vectors come from.
        embedder_id: A string naming the embedder.
        force: Recreate the collection even if it is compatible.

    Returns:
        The collection and whether it was recreated.
    """
    names = {getattr(c, "name", c) for c in client.list_collections()}
    if COLLECTION in names:
        current = client.get_collection(COLLECTION, embedding_function=None)
        meta = current.metadata or {}
        if force or meta.get("embedder") != embedder_id or meta.get("format") != INDEX_FORMAT:
            client.delete_collection(COLLECTION)
            return open_collection(client, embeddings, embedder_id), True
    return open_collection(client, embeddings, embedder_id), False


def existing_digests(collection: Any) -> dict[str, str]:
    """Chunk id -> digest of what the collection already holds (paged, for large collections).

    Args:
        collection: The chunk collection.

    Returns:
        The digest of every stored chunk ('' for one stored without).
    """
    out: dict[str, str] = {}
    total = collection.count()
    for offset in range(0, total, _PAGE):
        got = collection.get(include=["metadatas"], limit=_PAGE, offset=offset)
        for cid, meta in zip(got["ids"], got["metadatas"], strict=False):
            out[cid] = (meta or {}).get("digest", "")
    return out


def delete_chunks(collection: Any, ids: Sequence[str]) -> None:
    """Delete chunks from the collection, in pages.

    Args:
        collection: The chunk collection.
        ids: The chunk ids to delete.
    """
    for i in range(0, len(ids), _PAGE):
        collection.delete(ids=list(ids[i : i + _PAGE]))

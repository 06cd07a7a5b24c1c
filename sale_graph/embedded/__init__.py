"""The embedded default pool: small chat models shipped on PyPI, served by llama.cpp on loopback.

``embedded_pool()`` describes the agents; :class:`EmbeddedServer` starts and stops their
servers (llama-cpp-python's or llama.cpp's ``llama-server``, see ``default_backend``).
Nothing here runs on import.
"""

from sale_graph.embedded.models import (
    BACKENDS,
    Backend,
    EmbeddedModel,
    base_port,
    default_backend,
    embedded_models,
    embedded_pool,
    llama_server_binary,
    model_path,
)
from sale_graph.embedded.server import EmbeddedServer, is_serving, serving_backend

__all__ = [
    "BACKENDS",
    "Backend",
    "EmbeddedModel",
    "EmbeddedServer",
    "base_port",
    "default_backend",
    "embedded_models",
    "embedded_pool",
    "is_serving",
    "llama_server_binary",
    "model_path",
    "serving_backend",
]

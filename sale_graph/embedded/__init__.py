"""The embedded default pool: small chat models shipped on PyPI, served by llama.cpp on loopback.

``embedded_pool()`` describes the agents; :class:`EmbeddedServer` starts and stops their
servers. Nothing here runs on import.
"""

from sale_graph.embedded.models import EmbeddedModel, ServerError, base_port, embedded_models, embedded_pool, model_path
from sale_graph.embedded.server import EmbeddedServer, is_serving

__all__ = [
    "EmbeddedModel",
    "EmbeddedServer",
    "ServerError",
    "base_port",
    "embedded_models",
    "embedded_pool",
    "is_serving",
    "model_path",
]

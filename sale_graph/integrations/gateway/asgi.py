"""The gateway app from the environment, for ASGI servers: ``uvicorn`` workers and ``langgraph.json``'s ``http.app``.

``sale_graph.integrations.gateway.asgi:app`` is the app, built on first access (importing
this module builds nothing) from:

* ``SALE_GATEWAY_CONFIG``: a JSON object of :func:`~.app.create_gateway_app` keywords (what
  ``sale gateway`` hands its worker processes), else
* ``SALE_POOL`` (a pool TOML; unset: the embedded pool) and ``SALE_WEIGHTS`` (a weights file).

Either way ``SALE_GATEWAY_WORKERS`` (when the config does not say) counts the gateway
processes that share the pool's endpoints, each taking its share of every
``max_concurrency`` (:mod:`~.core`): set it to the total when another ASGI server runs
several workers, or several machines serve one pool.

``app_from_env`` is the factory (``uvicorn --factory sale_graph.integrations.gateway.asgi:app_from_env``).
"""

from __future__ import annotations

import json
import os
from typing import Any

from starlette.applications import Starlette

from sale_graph.errors import SaleError
from sale_graph.integrations.gateway.app import create_gateway_app

CONFIG_ENV = "SALE_GATEWAY_CONFIG"
POOL_ENV = "SALE_POOL"
WEIGHTS_ENV = "SALE_WEIGHTS"

_app: Starlette | None = None


def config_from_env() -> dict[str, Any]:
    """The keywords of :func:`create_gateway_app` the environment gives (see the module docstring).

    Raises:
        SaleError: ``SALE_GATEWAY_CONFIG`` is not a JSON object.
    """
    raw = os.environ.get(CONFIG_ENV)
    if raw:
        try:
            given = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise SaleError(f"${CONFIG_ENV} is not valid JSON: {exc}") from exc
        if not isinstance(given, dict):
            raise SaleError(f"${CONFIG_ENV} must be a JSON object of create_gateway_app keywords")
        return given
    config: dict[str, Any] = {"pool": os.environ.get(POOL_ENV) or None}
    if os.environ.get(WEIGHTS_ENV):
        config["weights"] = os.environ[WEIGHTS_ENV]
    return config


def app_from_env() -> Starlette:
    """A new gateway app configured from the environment (the factory for ``uvicorn --factory``)."""
    return create_gateway_app(**config_from_env())


def __getattr__(name: str) -> Any:
    """``app``: the gateway app from the environment, built on first access and kept."""
    global _app
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if _app is None:
        _app = app_from_env()
    return _app


__all__ = ["CONFIG_ENV", "POOL_ENV", "WEIGHTS_ENV", "app_from_env", "config_from_env"]

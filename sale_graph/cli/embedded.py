"""The embedded pool as the ``sale`` commands use it: the servers already running, else the configured ones."""

from __future__ import annotations

import os

from rich.console import Console

from sale_graph.embedded.models import BACKEND_ENV, SLOTS_ENV, EmbeddedModel, embedded_models, setup_label
from sale_graph.embedded.server import running_setup


def embedded_models_for_run(err: Console) -> tuple[EmbeddedModel, ...]:
    """The embedded models of ``sale run`` and ``sale gateway``: the servers running when no backend is set, else the configured ones."""
    if not os.environ.get(BACKEND_ENV, "").strip():
        running = running_setup()
        if running is not None:
            models = embedded_models(*running)
            err.print(f"using the embedded servers already running ({setup_label(models)} per model)")
            if running == ("llama-server", None):
                err.print(f"note: their /props did not give one slot count; max_concurrency {models[0].slots} assumed "
                          f"(restart them with `sale serve --slots N` or set {SLOTS_ENV})")
            return models
    models = embedded_models()
    err.print(f"embedded pool: {setup_label(models)} per model")
    return models


__all__ = ["embedded_models_for_run"]

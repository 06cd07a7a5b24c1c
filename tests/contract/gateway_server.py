"""The SALE gateway served by uvicorn on a free loopback port, in a thread of the test process.

::

    with GatewayServer(create_gateway_app(pool=pool, use_memory=False)) as gateway:
        client = openai.OpenAI(base_url=gateway.base_url, api_key="x")

For the contract tests, the benchmark and the load tests: the app runs on its own event
loop in a daemon thread (uvicorn installs no signal handler off the main thread), and
:meth:`GatewayServer.stop` lets open requests finish (a few seconds at most) before it
returns. :meth:`GatewayServer.tasks` lists the tasks running on the server's loop, so a
test can check that a request left nothing behind.

:class:`GatewayProcess` runs ``sale gateway`` itself in a process of its own (the command
as users run it, and a server whose CPU is not the client's)::

    with GatewayProcess(pool_toml) as gateway:
        httpx.get(f"{gateway.url}/health")
"""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

import httpx
import uvicorn

from sale_graph.cli.gateway import KEEP_ALIVE_S


class Loopback:
    """The URLs of a gateway serving on a loopback ``port``."""

    @property
    def port(self) -> int:
        """The port it serves on."""
        raise NotImplementedError

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1``: the ``base_url`` of an OpenAI client."""
        return f"{self.url}/v1"


class GatewayServer(Loopback):
    """An ASGI app on ``127.0.0.1:<free port>`` in a background thread.

    Args:
        app: the ASGI app (the gateway).
        **config: more ``uvicorn.Config`` settings (``log_level`` defaults to ``warning``).
    """

    def __init__(self, app: Any, **config: Any) -> None:
        self.app = app
        self.loop: asyncio.AbstractEventLoop | None = None
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        config.setdefault("log_level", "warning")
        config.setdefault("timeout_graceful_shutdown", 5)
        config.setdefault("timeout_keep_alive", KEEP_ALIVE_S)  # as ``sale gateway`` serves
        config.setdefault("interface", "asgi3")  # the wrapper below is a bound method, which uvicorn cannot tell
        self._server = uvicorn.Server(uvicorn.Config(self._serve, **config))
        self._thread: threading.Thread | None = None

    async def _serve(self, scope: Any, receive: Any, send: Any) -> None:
        """The app, noting the loop it runs on (the lifespan call comes first)."""
        self.loop = asyncio.get_running_loop()
        await self.app(scope, receive, send)

    def tasks(self) -> list[asyncio.Task[Any]]:
        """The tasks on the server's event loop now (uvicorn's own included), read on that loop."""
        if self.loop is None:
            raise RuntimeError("the gateway is not started")

        async def running() -> list[asyncio.Task[Any]]:
            me = asyncio.current_task()
            return [t for t in asyncio.all_tasks() if t is not me]

        return asyncio.run_coroutine_threadsafe(running(), self.loop).result(timeout=5)

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self._socket.getsockname()[1])

    def start(self, timeout_s: float = 10.0) -> Self:
        """Serve in a daemon thread; returns once the server accepts connections."""
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the gateway did not start (see the uvicorn log above)")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving (open requests get a few seconds to finish) and close the socket; idempotent."""
        if self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=15)
            self._thread = None
        self._socket.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def free_port() -> int:
    """A loopback port free now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class GatewayProcess(Loopback):
    """``sale gateway --pool <pool> --port <free port> --no-memory`` in a process of its own, stopped with Ctrl-C.

    Args:
        pool: the pool TOML.
        *args: more ``sale gateway`` arguments (``--workers 2``, ``--chroma-url URL``...).
        no_memory: pass ``--no-memory``; ``False`` when ``args`` say where the memory is.
    """

    def __init__(self, pool: Path | str, *args: str, no_memory: bool = True) -> None:
        self._port = free_port()
        memory = ["--no-memory"] if no_memory else []
        self.args = ["--pool", str(pool), "--port", str(self._port), *memory, "--log-level", "warning", *args]
        self._log: IO[bytes] | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        """The port the command serves on."""
        return self._port

    @property
    def pid(self) -> int:
        """The command's process id (with ``--workers N``, the supervisor of the worker processes)."""
        if self._proc is None:
            raise RuntimeError("sale gateway is not started")
        return self._proc.pid

    def start(self, timeout_s: float = 60.0) -> Self:
        """Start the command; returns once ``/health`` answers."""
        self._log = tempfile.TemporaryFile()
        self._proc = subprocess.Popen([sys.executable, "-m", "sale_graph.cli", "gateway", *self.args], stdout=self._log,
                                      stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while True:
            if self._proc.poll() is not None or time.monotonic() > deadline:
                log = self.log()
                self.stop()
                raise RuntimeError(f"sale gateway did not start:\n{log[-3000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.2)

    def wait_for_workers(self, workers: int, timeout_s: float = 60.0) -> set[int]:
        """Return once ``workers`` worker processes have answered ``/health`` (a new connection each); their ids."""
        seen: set[int] = set()
        deadline = time.monotonic() + timeout_s
        while len(seen) < workers:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {len(seen)} of {workers} gateway workers answered in {timeout_s:g} s:\n{self.log()[-3000:]}")
            try:
                with httpx.Client(timeout=2) as client:
                    seen.add(int(client.get(f"{self.url}/health").json()["pid"]))
            except httpx.HTTPError:
                time.sleep(0.1)
        return seen

    def log(self) -> str:
        """What the command wrote so far."""
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def kill(self) -> int:
        """``kill -9`` the command now (no shutdown of any kind, as a crash or the OOM killer ends it); its exit status."""
        if self._proc is None:
            raise RuntimeError("sale gateway is not started")
        self._proc.send_signal(signal.SIGKILL)
        return self._proc.wait(timeout=10)

    def stop(self) -> None:
        """Ctrl-C, then a kill after 15 s; idempotent."""
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.send_signal(signal.SIGINT)
                try:
                    self._proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait(timeout=5)
            self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

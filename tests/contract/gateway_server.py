"""The SALE gateway served by uvicorn on a free loopback port, in a thread of the test process.

::

    with GatewayServer(create_gateway_app(pool=pool, use_memory=False)) as gateway:
        client = openai.OpenAI(base_url=gateway.base_url, api_key="x")

For the contract tests, the benchmark and the load tests: the app runs on its own event
loop in a daemon thread (uvicorn installs no signal handler off the main thread), and
:meth:`GatewayServer.stop` lets open requests finish (a few seconds at most) before it
returns. :meth:`GatewayServer.tasks` lists the tasks running on the server's loop, so a
test can check that a request left nothing behind.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from types import TracebackType
from typing import Any, Self

import uvicorn


class GatewayServer:
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

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1``: the ``base_url`` of an OpenAI client."""
        return f"{self.url}/v1"

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

"""The in-process session store: pins in a dict of this process, expired after their idle time.

Each worker process has its own: with ``sale gateway --workers N`` a session's later
requests may reach another worker, which does not know its pin and runs a new auction
(the command warns). A shared backend behind :class:`~.base.SessionStore` lifts that.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from sale_graph.integrations.gateway.sessions.base import Pin, SessionStore

DEFAULT_MAX_PINS = 100_000


class InProcessSessions(SessionStore):
    """Pins in this process, least recently used first; an expired pin is dropped when met or when room is needed.

    Args:
        idle_s: seconds a pin lives after its last use.
        max_pins: most pins kept; past it the least recently used pin goes (expired ones first).
        clock: the time source (``time.monotonic``; tests pass their own).
    """

    def __init__(self, idle_s: float, *, max_pins: int = DEFAULT_MAX_PINS, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(idle_s)
        if max_pins < 1:
            raise ValueError(f"max_pins must be at least 1, got {max_pins}")
        self.max_pins = max_pins
        self._clock = clock
        self._pins: OrderedDict[str, tuple[float, Pin]] = OrderedDict()  # key -> (last use, pin), oldest use first

    def _expire(self, now: float) -> None:
        """Drop the pins unused for ``idle_s`` (they sit at the front: the least recently used)."""
        while self._pins:
            key, (used, _) = next(iter(self._pins.items()))
            if now - used < self.idle_s:
                return
            del self._pins[key]

    async def get(self, key: str) -> Pin | None:
        """The pin under ``key``, its idle time restarted; ``None`` when there is none or it expired."""
        now = self._clock()
        self._expire(now)
        found = self._pins.get(key)
        if found is None:
            return None
        self._pins[key] = (now, found[1])
        self._pins.move_to_end(key)
        return found[1]

    async def put(self, key: str, pin: Pin) -> None:
        """Pin ``key``; past ``max_pins`` the least recently used pin goes."""
        now = self._clock()
        self._expire(now)
        self._pins[key] = (now, pin)
        self._pins.move_to_end(key)
        while len(self._pins) > self.max_pins:
            self._pins.popitem(last=False)

    async def put_if_absent(self, key: str, pin: Pin) -> Pin:
        """Pin ``key`` unless it holds a live pin (no ``await`` inside: atomic on the event loop); the pin it holds now."""
        found = await self.get(key)  # never suspends: InProcessSessions.get awaits nothing
        if found is not None:
            return found
        await self.put(key, pin)
        return pin

    async def delete(self, key: str) -> None:
        """Drop the pin under ``key``."""
        self._pins.pop(key, None)

    async def count(self) -> int:
        """Pins alive now."""
        self._expire(self._clock())
        return len(self._pins)


__all__ = ["DEFAULT_MAX_PINS", "InProcessSessions"]

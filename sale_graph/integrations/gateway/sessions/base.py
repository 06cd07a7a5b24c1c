"""The session store's interface: where a conversation's pin lives between requests.

A pin ties a conversation to the winner of its auction, so its later requests (the
client's next turns, its tool results) go to the same agent with the same strategy,
without bidding again, and the winner's prompt cache stays warm. The gateway keeps two
kinds of keys in one store:

* ``session:<id>``: a client session (the ``x-sale-session`` header, else the request's
  ``user`` field): pinned to the winner of the session's first auction;
* ``turn:<hash>``: one human turn of a conversation without a session, so that the
  request carrying the turn's tool results continues with the winner of the turn's auction.

A store is small and async so that a shared backend (a database, a cache server) can
implement it: :meth:`SessionStore.get` reads a pin and restarts its idle time,
:meth:`SessionStore.put` writes one, :meth:`SessionStore.put_if_absent` writes one only
where no live pin is (atomically: of two workers pinning one session at once, one pin
wins and both read it), :meth:`SessionStore.delete` drops one; a pin unused for
``idle_s`` seconds is gone. :class:`Pin` is plain JSON (:meth:`Pin.to_dict`).
"""

from __future__ import annotations

import abc
import time
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class Pin:
    """A conversation pinned to the winner of one auction.

    Attributes:
        auction_id: the auction that chose the agent.
        agent: the agent that answers (the auction's winner).
        strategy: the winning strategy, sent to the agent as a system message.
        runner_up: the best-scored other agent, which answers when ``agent``'s endpoint fails
            and fallback is allowed (``None``: there is none).
        runner_up_strategy: the runner-up's strategy.
        summary: the auction's summary (bids, scores, margin), shown on the pinned turns.
        created: when the auction ran (epoch seconds).
    """

    auction_id: str
    agent: str
    strategy: str
    runner_up: str | None = None
    runner_up_strategy: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    created: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict that :meth:`from_dict` reads back."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Pin:
        """The pin :meth:`to_dict` wrote."""
        return cls(**data)


class SessionStore(abc.ABC):
    """Where pins live; every method is async and safe to call from concurrent requests.

    Args:
        idle_s: seconds a pin lives after its last :meth:`get` or :meth:`put`.

    Attributes:
        shared: the store is shared by every worker that opens it (:meth:`count` counts them all).
    """

    shared: ClassVar[bool] = False

    def __init__(self, idle_s: float) -> None:
        if not idle_s > 0:
            raise ValueError(f"the session idle time must be a positive number of seconds, got {idle_s}")
        self.idle_s = float(idle_s)

    @abc.abstractmethod
    async def get(self, key: str) -> Pin | None:
        """The pin under ``key`` (its idle time restarts), or ``None`` when there is none or it expired."""

    @abc.abstractmethod
    async def put(self, key: str, pin: Pin) -> None:
        """Pin ``key`` (replacing any pin it had)."""

    @abc.abstractmethod
    async def put_if_absent(self, key: str, pin: Pin) -> Pin:
        """Pin ``key`` unless it holds a live pin; atomic across every user of the store.

        Returns:
            the pin ``key`` holds now: ``pin`` when it was written, else the one already there
            (its idle time restarted).
        """

    @abc.abstractmethod
    async def delete(self, key: str) -> None:
        """Drop the pin under ``key``, if any."""

    @abc.abstractmethod
    async def count(self) -> int:
        """How many pins are alive now (for the metrics)."""

    async def close(self) -> None:
        """Release the store's resources (nothing by default)."""
        return None


__all__ = ["Pin", "SessionStore"]

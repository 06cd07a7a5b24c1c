"""Keys: the client keys the gateway accepts, and the upstream keys it never shows.

Client keys (``sale gateway --api-keys-env NAME``): the variable ``NAME`` holds the
accepted keys, separated by commas or whitespace; a request must bring one as
``Authorization: Bearer <key>`` (what the ``openai`` SDK and ``ChatOpenAI`` send as
their ``api_key``), else it gets a 401. With no keys configured the gateway is open:
bind it to loopback.

Upstream keys come from the pool's ``api_key_env`` variables and go only into the
``Authorization`` header of the request to that agent's endpoint. :class:`Redactor`
removes them (and the client keys) from every text the gateway answers or logs, an
upstream error that echoes the key it was sent included.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Iterable, Mapping

from sale_graph.errors import SaleError
from sale_graph.integrations.gateway.errors import GatewayError
from sale_graph.pool import AgentPool

REDACTED = "[redacted]"
MIN_SECRET_CHARS = 4
"""Shorter values are not treated as secrets (redacting them would garble ordinary text)."""


def _bearer(headers: Mapping[str, str]) -> str | None:
    value = headers.get("authorization")
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


class ClientKeys:
    """The client keys a gateway accepts; none means every request is let in.

    Args:
        keys: the accepted keys.
        source: where they came from, for messages (``$NAME``).
    """

    def __init__(self, keys: Iterable[str] = (), source: str = "") -> None:
        self._keys = [k for k in keys if k]
        self.source = source

    @classmethod
    def from_env(cls, name: str | None) -> ClientKeys:
        """The keys in the environment variable ``name`` (commas or whitespace between them); ``None``: no keys.

        Raises:
            SaleError: the variable is named but not set or empty (the gateway would be open by mistake).
        """
        if not name:
            return cls()
        raw = os.environ.get(name, "")
        keys = [k for k in re.split(r"[\s,]+", raw) if k]
        if not keys:
            raise SaleError(f"--api-keys-env {name}: the environment variable {name} is not set or holds no key; export it "
                            "with the accepted client keys (separated by commas), or leave the option out for an open gateway")
        return cls(keys, source=f"${name}")

    @property
    def enabled(self) -> bool:
        """Whether requests must bring a key."""
        return bool(self._keys)

    def secrets(self) -> list[str]:
        """The keys themselves (for the :class:`Redactor`)."""
        return list(self._keys)

    def check(self, headers: Mapping[str, str]) -> str:
        """The request's client id (a short hash of its key; ``""`` when the gateway has no keys).

        Raises:
            GatewayError: 401 when keys are on and the request brings none or a wrong one.
        """
        token = _bearer(headers)
        if not self._keys:
            return ""
        if token is None:
            raise GatewayError(401, "this SALE gateway needs an API key: send 'Authorization: Bearer <key>' "
                               "(the api_key of your OpenAI client)", code="invalid_api_key")
        if not any(hmac.compare_digest(token.encode(), key.encode()) for key in self._keys):
            raise GatewayError(401, "incorrect API key for this SALE gateway", code="invalid_api_key")
        return hashlib.sha256(token.encode()).hexdigest()[:16]


class Redactor:
    """Removes secrets from text: ``redact("... sk-abc ...") == "... [redacted] ..."``.

    Args:
        secrets: the values to hide (shorter than :data:`MIN_SECRET_CHARS` characters are ignored).
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        found = sorted({s for s in secrets if s and len(s) >= MIN_SECRET_CHARS}, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, found))) if found else None

    @classmethod
    def for_pool(cls, pool: AgentPool, client_keys: ClientKeys) -> Redactor:
        """Hides every upstream key the pool's ``api_key_env`` variables hold, and the client keys."""
        upstream = [os.environ.get(a.api_key_env, "") for a in pool.agents if a.api_key_env]
        return cls([*upstream, *client_keys.secrets()])

    def __call__(self, text: str) -> str:
        """``text`` with every secret replaced by :data:`REDACTED`."""
        return self._pattern.sub(REDACTED, text) if self._pattern is not None else text


__all__ = ["REDACTED", "ClientKeys", "Redactor"]

"""What every search backend shares: the result record, the backend protocol, the errors and helpers.

Every backend answers ``search(query, max_results) -> list[SearchResult]``, a
result being ``title``/``url``/``content``: the shape the Tavily and DuckDuckGo
LangChain tools return, so prompts and parsing work the same whatever the
backend. The helpers check queries and config values and turn HTTP failures
into :class:`SearchBackendError` messages that name the backend and the fix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol, runtime_checkable

import httpx

from sale_graph.errors import SaleError

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "MAX_RESULTS_LIMIT",
    "SearchResult",
    "SearchBackend",
    "BackendClass",
    "SearchConfigError",
    "SearchBackendError",
    "check_query",
    "text_field",
    "http_error",
    "json_body",
    "check_timeout",
    "check_str_list",
]

DEFAULT_TIMEOUT_S = 20.0
MAX_RESULTS_LIMIT = 20


class SearchConfigError(SaleError, ValueError):
    """A search backend config is invalid; the message names the field at fault and the accepted values."""


class SearchBackendError(RuntimeError):
    """A search backend failed at run time (HTTP error, bad response); the message names the backend and the fix."""


@dataclass(frozen=True)
class SearchResult:
    """One search hit: the page title, its URL and a text snippet (``content``)."""

    title: str
    url: str
    content: str

    def to_dict(self) -> dict[str, str]:
        """The ``{"title", "url", "content"}`` dict that LangChain search tools return."""
        return asdict(self)


@runtime_checkable
class SearchBackend(Protocol):
    """What the ``web_search`` tool needs from a backend: a name and ``search``."""

    name: str

    def search(self, query: str, max_results: int = 5) -> list[SearchResult]:
        """Return at most ``max_results`` results for ``query``, best first."""
        ...


class BackendClass(Protocol):
    """What :func:`~sale_graph.tools.search.make_search_backend` needs from a backend class.

    ``OPTIONS`` maps each config key the backend accepts to a short
    description (named in errors about unknown keys); ``from_config`` builds
    the backend from those keys, checking their values.
    """

    @property
    def OPTIONS(self) -> Mapping[str, str]:
        """Config key -> short description, for every option the backend accepts."""
        ...

    def from_config(self, options: Mapping[str, Any]) -> SearchBackend:
        """Build the backend from config options whose keys are all in ``OPTIONS``."""
        ...


def check_query(backend: str, query: str, max_results: int) -> None:
    """Reject an empty query or an out-of-range result count before any work is done.

    Args:
        backend: The backend's name, for the message.
        query: The query.
        max_results: The number of results asked for.

    Raises:
        ValueError: The query is empty or ``max_results`` is not an integer from 1 to ``MAX_RESULTS_LIMIT``.
    """
    if not isinstance(query, str) or not query.strip():
        raise ValueError(f"{backend} search: query must be a non-empty string, got {query!r}")
    if isinstance(max_results, bool) or not isinstance(max_results, int) or not 1 <= max_results <= MAX_RESULTS_LIMIT:
        raise ValueError(f"{backend} search: max_results must be an integer from 1 to {MAX_RESULTS_LIMIT}, got {max_results!r}")


def text_field(value: Any) -> str:
    """A response field as a stripped string ('' for missing/null)."""
    return "" if value is None else str(value).strip()


def http_error(backend: str, exc: Exception, hint: str = "") -> SearchBackendError:
    """A :class:`SearchBackendError` naming the backend, what failed and what to check.

    Args:
        backend: The backend's name.
        exc: The httpx (or other) exception.
        hint: What the user should check, appended to the message.

    Returns:
        The error to raise (``from exc``).
    """
    if isinstance(exc, httpx.HTTPStatusError):
        body = exc.response.text[:300].replace("\n", " ")
        msg = f"{backend} search: HTTP {exc.response.status_code} from {exc.request.url}: {body}"
    elif isinstance(exc, httpx.TimeoutException):
        msg = f"{backend} search: timed out calling {exc.request.url}; raise 'timeout' or check the service"
    elif isinstance(exc, httpx.RequestError):
        msg = f"{backend} search: cannot reach {exc.request.url} ({type(exc).__name__}: {exc}); check the network/base_url"
    else:
        msg = f"{backend} search: {type(exc).__name__}: {exc}"
    return SearchBackendError(msg + (f". {hint}" if hint else ""))


def json_body(backend: str, response: Any) -> Any:
    """Decode a JSON response body, with an error that says what came back instead.

    Args:
        backend: The backend's name.
        response: The ``httpx.Response``.

    Returns:
        The decoded JSON.

    Raises:
        SearchBackendError: The body is not JSON.
    """
    try:
        return response.json()
    except ValueError as exc:
        ctype = response.headers.get("content-type", "?")
        raise SearchBackendError(
            f"{backend} search: expected JSON from {response.request.url}, got {ctype}: {response.text[:200]!r}"
        ) from exc


def check_timeout(backend: str, timeout: Any) -> float:
    """A config's timeout as a float.

    Args:
        backend: The backend's name.
        timeout: The configured value.

    Returns:
        The timeout in seconds.

    Raises:
        SearchConfigError: It is not a positive number.
    """
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise SearchConfigError(f"{backend}: timeout must be a positive number of seconds, got {timeout!r}")
    return float(timeout)


def check_str_list(backend: str, field: str, value: Any) -> list[str]:
    """A config's list of strings (``None`` gives an empty list).

    Args:
        backend: The backend's name.
        field: The config field, for the message.
        value: The configured value.

    Returns:
        The strings, as a new list.

    Raises:
        SearchConfigError: It is not a list of strings (a single string is refused too).
    """
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, Sequence) or not all(isinstance(v, str) for v in value):
        raise SearchConfigError(f"{backend}: {field} must be a list of strings, got {value!r}")
    return list(value)

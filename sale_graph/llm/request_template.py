"""The openai SDK's HTTP request for a JSON call, built from a template of the same call's earlier request.

Before each attempt the SDK's ``_build_request`` merges the client's and the call's
headers, parses the base URL and the path into a new URL, and has the HTTP client
merge its own headers, cookies and query parameters into a new ``Request``, which
normalises every header again: about a fifth of an awaited auction call's client CPU,
for a request that differs from the previous one of the same model only in its body.

:func:`template_requests` has a client build such requests from a template instead.
The headers are still built by the SDK for every attempt (``_build_headers``: the
authentication, the retry count, the read timeout and any header of the call), and
together with the method, the URL path and the timeout they are the template's key;
the template is the request the SDK built itself the first time it met that key, and a
later request is a copy of it carrying the new body and its ``Content-Length``. So the
method, URL, headers (in their order), body and extensions are those the SDK would build,
which a unit test checks field by field against ``_build_request`` itself. A request
the template cannot stand for (a query string, files, raw content, a multipart body, a
client with cookies or default query parameters, a GET) is built by the SDK, as is
every request of another SDK version without the parts used here.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, NamedTuple

from openai import NotGiven

try:  # the SDK's own request plumbing: without it (another SDK version) requests are built as before
    from openai._base_client import _merge_mappings
    from openai._base_client import log as _sdk_log
    from openai._utils._json import openapi_dumps

    _PLUMBING = True
except ImportError:  # pragma: no cover - depends on the installed SDK
    _PLUMBING = False

__all__ = ["TemplatedBuild", "template_requests"]


class _Template(NamedTuple):
    """What a request of one key keeps from the first the SDK built: all but its body."""

    request_type: type
    method: str
    url: Any
    headers: Any
    extensions: dict[str, Any]
    stream_type: type


#: How many templates a client keeps (one per method, path, header set and timeout); past it they are rebuilt.
MAX_TEMPLATES = 64


class TemplatedBuild:
    """A client's ``_build_request``, answering from a template where the request allows it.

    Args:
        client: The openai SDK client (``OpenAI`` or ``AsyncOpenAI``) whose requests are built.
        build: That client's own ``_build_request`` (bound), which builds every template
            and every request a template cannot stand for.
    """

    def __init__(self, client: Any, build: Any) -> None:
        self._client = client
        self._build = build
        self._templates: dict[tuple[Any, ...], _Template] = {}
        self._lock = threading.Lock()
        self.built = 0  # requests built from a template (for tests and diagnostics)

    def __call__(self, options: Any, *, retries_taken: int = 0) -> Any:
        """The request for ``options``: from its template, or built by the SDK (which makes the template)."""
        if _sdk_log.isEnabledFor(logging.DEBUG):  # the SDK logs each build at DEBUG: keep its lines
            return self._build(options, retries_taken=retries_taken)
        body = self._body(options)
        if body is None:
            return self._build(options, retries_taken=retries_taken)
        headers = self._client._build_headers(options, retries_taken=retries_taken)
        key = (options.method, options.url, tuple(headers.raw), repr(self._timeout(options)))
        template = self._templates.get(key)
        if template is None:
            request = self._build(options, retries_taken=retries_taken)
            if request.headers.get("content-length") is not None and request.content == body:
                with self._lock:
                    if len(self._templates) >= MAX_TEMPLATES:
                        self._templates.clear()
                    self._templates[key] = _Template(type(request), request.method, request.url, request.headers,
                                                     dict(request.extensions), type(request.stream))
            return request
        return self._from(template, body)

    def _from(self, template: _Template, body: bytes) -> Any:
        """A request like the template's with ``body`` and its ``Content-Length``."""
        headers = template.headers.copy()
        headers["Content-Length"] = str(len(body))
        # With the stream given, the request adds no headers of its own: the template's are already complete.
        request = template.request_type(template.method, template.url, headers=headers, stream=template.stream_type(body),
                                        extensions=template.extensions)
        request.read()
        self.built += 1
        return request

    def _timeout(self, options: Any) -> Any:
        """The call's timeout as the SDK resolves it (the client's unless the call gives one)."""
        return self._client.timeout if isinstance(options.timeout, NotGiven) else options.timeout

    def _body(self, options: Any) -> bytes | None:
        """The JSON body the SDK would send for ``options``, or ``None`` when a template cannot stand for the request."""
        if (options.method.lower() == "get" or options.files is not None or options.content is not None or options.params
                or self._client.default_query or getattr(self._client._client, "cookies", None)
                or getattr(self._client._client, "params", None) or not isinstance(options.json_data, dict)):
            return None
        json_data = options.json_data
        if options.extra_json is not None:
            json_data = _merge_mappings(json_data, options.extra_json)
        headers = options.headers or {}
        if any(not isinstance(value, str) for value in headers.values()):
            return None  # an Omit or another marker: the SDK's own merge decides
        if any(key.lower() == "content-type" and not value.startswith("application/json") for key, value in headers.items()):
            return None
        return bytes(openapi_dumps(json_data))


def template_requests(client: Any) -> Any:
    """Have ``client`` build its JSON requests from templates (see the module docstring); ``client`` is returned.

    Idempotent; a client of an SDK without the parts used here is left as it is.

    Args:
        client: An openai SDK client (``OpenAI`` or ``AsyncOpenAI``).

    Returns:
        The same client.
    """
    if not _PLUMBING or isinstance(client.__dict__.get("_build_request"), TemplatedBuild):
        return client
    # An instance attribute in front of the class's method: only this client's requests change.
    client.__dict__["_build_request"] = TemplatedBuild(client, client._build_request)
    return client

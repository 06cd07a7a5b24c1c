"""The gateway's errors, answered in OpenAI's error shape with the status that fits.

Every failure a client can see is ``{"error": {"message", "type", "code", "param"}}``
(what the ``openai`` SDK and LangChain read into their ``APIStatusError`` classes):

* 400 ``invalid_json``, ``invalid_value``, ``model_not_found``, ``unknown_sale_option``,
  ``upstream_rejected_request``: bad input; ``param`` names the field;
* 401 ``invalid_api_key``: the gateway has client keys and the request brings none or a wrong one;
* 404 ``not_found``, ``auction_not_found``, ``session_not_found``: no such route, auction or session;
* 409 ``memory_off``: an outcome for a gateway that runs without the auction memory;
* 413 ``request_too_large``: the body is over the gateway's limit;
* 429 ``rate_limit_exceeded``: the answering endpoint kept rate-limiting after its retries (``Retry-After`` set);
* 502 ``upstream_error``: the answering endpoint failed and no fallback was allowed or possible;
* 503 ``sale_auction_failed``: the auction could not decide (below the jury's quorum, no bid...);
* 500 ``internal_error``: a bug in the gateway;
* 499 ``client_closed_request``: the client left before its answer (nobody reads it: it is
  what the metrics and the log count).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.responses import JSONResponse

from sale_graph.errors import ContextError, SaleError, TaskError

ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}
"""OpenAI's ``type`` for each status; any other status is a ``server_error``."""


class GatewayError(Exception):
    """A failure answered to the client as an OpenAI-shaped error.

    Args:
        status: the HTTP status.
        message: what went wrong and what to do (never an upstream key).
        code: a stable machine-readable code (see the module's table).
        param: the request field at fault, when one is.
        headers: extra response headers (``Retry-After``...).
    """

    def __init__(self, status: int, message: str, *, code: str, param: str | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.headers = dict(headers or {})

    @property
    def type(self) -> str:
        """OpenAI's error ``type`` for the status."""
        return ERROR_TYPES.get(self.status, "server_error")

    def body(self) -> dict[str, Any]:
        """``{"error": {"message", "type", "code", "param"}}``."""
        return {"error": {"message": self.message, "type": self.type, "code": self.code, "param": self.param}}

    def response(self, headers: Mapping[str, str] | None = None) -> JSONResponse:
        """The JSON response, with this error's headers and ``headers`` (the auction's, when one ran)."""
        return JSONResponse(self.body(), status_code=self.status, headers={**(headers or {}), **self.headers})


def bad_request(message: str, param: str | None, code: str = "invalid_value") -> GatewayError:
    """A 400 naming the field at fault."""
    return GatewayError(400, message, code=code, param=param)


def auction_failed(reason: str) -> GatewayError:
    """The 503 of an auction that could not decide."""
    return GatewayError(503, f"the SALE auction could not decide: {reason}", code="sale_auction_failed")


def from_sale_error(exc: SaleError, where: str = "sale") -> GatewayError:
    """The answer to a library error raised while preparing or running the auction.

    Args:
        exc: the error.
        where: the request field that carried the settings, for a :class:`ContextError`.
    """
    message = " ".join(str(exc).split())
    if isinstance(exc, ContextError):
        return bad_request(message, where, "unknown_sale_option")
    if isinstance(exc, TaskError):
        return bad_request(message, "messages")
    return auction_failed(message)


def client_closed() -> GatewayError:
    """The 499 of a request whose client disconnected before its answer (nginx's status for it)."""
    return GatewayError(499, "the client closed the connection before its answer: the request to the agent was not "
                        "sent, or was cancelled", code="client_closed_request")


def internal_error() -> GatewayError:
    """A 500 for a bug (the details go to the gateway's log, not to the client)."""
    return GatewayError(500, "the SALE gateway failed on this request (a bug: see the gateway's log)", code="internal_error")


__all__ = ["ERROR_TYPES", "GatewayError", "auction_failed", "bad_request", "client_closed", "from_sale_error", "internal_error"]

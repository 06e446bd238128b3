"""What clients see of errors: a safe message, a stable ``extensions.code`` and the request id.

Tracebacks, upstream names and addresses stay in the log, under the same
request id the client is given, so an operator can find the detail.
"""

from __future__ import annotations

import logging

from graphql import GraphQLError

from resolvers.errors import GraphError
from upstreams.errors import (
    UpstreamError,
    UpstreamNotFound,
    UpstreamProtocolError,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)

logger = logging.getLogger("switchyard.operation")

INTERNAL_ERROR = "INTERNAL_SERVER_ERROR"
PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
BAD_USER_INPUT = "BAD_USER_INPUT"
COST_LIMIT_EXCEEDED = "COST_LIMIT_EXCEEDED"
REQUEST_ERROR_CODES = frozenset(
    {PARSE_FAILED, VALIDATION_FAILED, BAD_USER_INPUT, COST_LIMIT_EXCEEDED}
)
"""Codes of errors raised before execution: the response is then HTTP 400."""

_UPSTREAM_ERRORS: dict[type[UpstreamError], tuple[str, str]] = {
    UpstreamUnavailable: (
        "UPSTREAM_UNAVAILABLE",
        "A service this field needs is unavailable.",
    ),
    UpstreamTimeout: (
        "UPSTREAM_TIMEOUT",
        "A service this field needs did not answer in time.",
    ),
    UpstreamNotFound: ("NOT_FOUND", "Not found."),
    UpstreamRejected: (BAD_USER_INPUT, "The service rejected the arguments of this field."),
    UpstreamProtocolError: ("UPSTREAM_ERROR", "A service this field needs answered wrongly."),
}


def present_error(error: GraphQLError, request_id: str, *, debug: bool = False) -> GraphQLError:
    """The client-facing copy of ``error``."""
    original = error.original_error
    extensions: dict[str, object]
    if isinstance(original, GraphError):
        message = original.message
        extensions = {"code": original.code, **original.extensions}
    elif isinstance(original, UpstreamError):
        code, message = _UPSTREAM_ERRORS.get(type(original), ("UPSTREAM_ERROR", "Upstream error."))
        extensions = {"code": code}
        if debug:
            extensions["service"] = original.upstream
    elif original is None or isinstance(original, GraphQLError):
        message = error.message
        extensions = {"code": _code_of_request_error(error), **(error.extensions or {})}
    else:
        logger.error(
            "unexpected error at %s",
            ".".join(str(p) for p in error.path or ()),
            exc_info=original,
            extra={"request_id": request_id, "stage": "resolver"},
        )
        message = "Internal server error."
        extensions = {"code": INTERNAL_ERROR}
    extensions["requestId"] = request_id
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions=extensions,
    )


def _code_of_request_error(error: GraphQLError) -> str:
    existing = (error.extensions or {}).get("code")
    if isinstance(existing, str):
        return existing
    if error.message.startswith("Syntax Error"):
        return PARSE_FAILED
    if error.message.startswith("Variable "):
        return BAD_USER_INPUT
    if error.path:
        return INTERNAL_ERROR
    return VALIDATION_FAILED

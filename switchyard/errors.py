"""Every error a client can see: one enumeration of codes, one presenter, one status rule.

What clients get is a safe message, a stable ``extensions.code`` and the
request id; tracebacks, upstream names and addresses stay in the log, under
the same request id, so an operator can find the detail::

    GraphError                  raised on purpose; its message is shown as it is
    ├── BadUserInput            BAD_USER_INPUT
    ├── Unauthenticated         UNAUTHENTICATED
    ├── Forbidden               FORBIDDEN
    └── RateLimited             RATE_LIMITED

Upstream failures (``switchyard.upstream.errors``) are translated here too, so
a resolver lets them propagate and the client sees ``UPSTREAM_UNAVAILABLE``
and a generic message.

    >>> syntax = GraphQLError("Syntax Error: ...", extensions={"code": "GRAPHQL_PARSE_FAILED"})
    >>> response_status([syntax], has_data=False)
    400
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

import orjson
from graphql import GraphQLError
from starlette.responses import Response

from switchyard.upstream.errors import (
    UpstreamError,
    UpstreamNotFound,
    UpstreamProtocolError,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)

logger = logging.getLogger("switchyard.operation")
_SUGGESTION = re.compile(r" Did you mean [^?]*\?")


class ErrorCode(StrEnum):
    """Every ``extensions.code`` the gateway emits."""

    GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
    GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
    BAD_USER_INPUT = "BAD_USER_INPUT"
    BAD_REQUEST = "BAD_REQUEST"
    OPERATION_LIMIT_EXCEEDED = "OPERATION_LIMIT_EXCEEDED"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    NOT_FOUND = "NOT_FOUND"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    NOT_ACCEPTABLE = "NOT_ACCEPTABLE"
    UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
    COST_LIMIT_EXCEEDED = "COST_LIMIT_EXCEEDED"
    RATE_LIMITED = "RATE_LIMITED"
    OVERLOADED = "OVERLOADED"
    PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
    PERSISTED_QUERY_NOT_SUPPORTED = "PERSISTED_QUERY_NOT_SUPPORTED"
    PERSISTED_QUERY_NOT_ALLOWED = "PERSISTED_QUERY_NOT_ALLOWED"
    UPSTREAM_UNAVAILABLE = "UPSTREAM_UNAVAILABLE"
    UPSTREAM_TIMEOUT = "UPSTREAM_TIMEOUT"
    UPSTREAM_ERROR = "UPSTREAM_ERROR"
    INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"


REQUEST_ERROR_STATUS: Mapping[ErrorCode, int] = {
    ErrorCode.GRAPHQL_PARSE_FAILED: 400,
    ErrorCode.GRAPHQL_VALIDATION_FAILED: 400,
    ErrorCode.BAD_USER_INPUT: 400,
    ErrorCode.BAD_REQUEST: 400,
    ErrorCode.COST_LIMIT_EXCEEDED: 400,
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.NOT_ACCEPTABLE: 406,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: 415,
    ErrorCode.OPERATION_LIMIT_EXCEEDED: 400,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.OVERLOADED: 503,
    ErrorCode.PERSISTED_QUERY_NOT_FOUND: 404,
    ErrorCode.PERSISTED_QUERY_NOT_SUPPORTED: 400,
    ErrorCode.PERSISTED_QUERY_NOT_ALLOWED: 403,
}
"""The HTTP status of a request refused before execution, by the code of its error."""

LIMIT_STATUS: Mapping[str, int] = {
    "max_body_bytes": 413,
    "max_header_count": 431,
    "max_header_bytes": 431,
}
"""Limits of the HTTP request itself answer their own status; the others are 400."""


class GraphError(Exception):
    """An error whose message is safe to show to the client as it is."""

    code: ErrorCode = ErrorCode.INTERNAL_SERVER_ERROR

    def __init__(self, message: str, **extensions: object) -> None:
        super().__init__(message)
        self.message = message
        self.extensions = extensions


class BadUserInput(GraphError):
    code = ErrorCode.BAD_USER_INPUT


class BadRequest(GraphError):
    """The HTTP request itself is wrong (no query, a body that is not JSON)."""

    code = ErrorCode.BAD_REQUEST


class NotFound(GraphError):
    code = ErrorCode.NOT_FOUND


class Unauthenticated(GraphError):
    code = ErrorCode.UNAUTHENTICATED


class Forbidden(GraphError):
    code = ErrorCode.FORBIDDEN


class RateLimited(GraphError):
    code = ErrorCode.RATE_LIMITED


_UPSTREAM_ERRORS: dict[type[UpstreamError], tuple[ErrorCode, str]] = {
    UpstreamUnavailable: (
        ErrorCode.UPSTREAM_UNAVAILABLE,
        "A service this field needs is unavailable.",
    ),
    UpstreamTimeout: (
        ErrorCode.UPSTREAM_TIMEOUT,
        "A service this field needs did not answer in time.",
    ),
    UpstreamNotFound: (ErrorCode.NOT_FOUND, "Not found."),
    UpstreamRejected: (
        ErrorCode.BAD_USER_INPUT,
        "The service rejected the arguments of this field.",
    ),
    UpstreamProtocolError: (
        ErrorCode.UPSTREAM_ERROR,
        "A service this field needs answered wrongly.",
    ),
}


def upstream_error_code(error: UpstreamError) -> tuple[ErrorCode, str]:
    """The code and message of an upstream failure, by its nearest class in the table
    (``UpstreamRefused``, a circuit open, is an ``UpstreamUnavailable``)."""
    for cls in type(error).__mro__:
        found = _UPSTREAM_ERRORS.get(cls)
        if found is not None:
            return found
    return ErrorCode.UPSTREAM_ERROR, "Upstream error."


def present_error(
    error: GraphQLError, request_id: str, *, debug: bool = False, hide_suggestions: bool = False
) -> GraphQLError:
    """The client-facing copy of ``error``: safe message, stable code, the request id.

    ``hide_suggestions`` (production) drops graphql-core's "Did you mean ...?", which would
    tell a stranger the schema's field names::

        >>> error = GraphQLError('Cannot query field "nme" on type "User". Did you mean "name"?')
        >>> present_error(error, "r1", hide_suggestions=True).message
        'Cannot query field "nme" on type "User".'
    """
    original = error.original_error
    extensions: dict[str, object]
    if isinstance(original, GraphError):
        message = original.message
        extensions = {"code": original.code.value, **original.extensions}
    elif isinstance(original, UpstreamError):
        code, message = upstream_error_code(original)
        extensions = {"code": code.value}
        if debug:
            extensions["service"] = original.upstream
    elif original is None or isinstance(original, GraphQLError):
        message = error.message
        if hide_suggestions:
            message = _SUGGESTION.sub("", message)
        extensions = {**(error.extensions or {}), "code": code_of_request_error(error).value}
    else:
        logger.error(
            "unexpected error at %s",
            ".".join(str(p) for p in error.path or ()),
            exc_info=original,
            extra={"request_id": request_id, "stage": "execute"},
        )
        message = "Internal server error."
        extensions = {"code": ErrorCode.INTERNAL_SERVER_ERROR.value}
    extensions["requestId"] = request_id
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions=extensions,
    )


def code_of_request_error(error: GraphQLError) -> ErrorCode:
    """The code of an error graphql-core raised (parsing, validation, variable coercion)."""
    existing = (error.extensions or {}).get("code")
    if isinstance(existing, str) and existing in ErrorCode.__members__:
        return ErrorCode(existing)
    if error.message.startswith("Syntax Error"):
        return ErrorCode.GRAPHQL_PARSE_FAILED
    if error.message.startswith("Variable "):
        return ErrorCode.BAD_USER_INPUT
    if error.path:
        return ErrorCode.INTERNAL_SERVER_ERROR
    return ErrorCode.GRAPHQL_VALIDATION_FAILED


def response_status(errors: Sequence[GraphQLError], *, has_data: bool) -> int:
    """The one rule from outcome to HTTP status.

    An operation that executed answers 200, whatever failed at field paths;
    one refused before execution answers the status of its errors' code
    (``REQUEST_ERROR_STATUS``), the highest when several apply.
    """
    if has_data or not errors or any(e.path for e in errors):
        return 200
    statuses = [_status(e) for e in errors]
    if any(status is None for status in statuses):
        return 200
    return max(status for status in statuses if status is not None)


def _status(error: GraphQLError) -> int | None:
    extensions = error.extensions or {}
    code = extensions.get("code")
    if not isinstance(code, str) or code not in ErrorCode.__members__:
        return None
    limit = extensions.get("limit")
    if isinstance(limit, dict) and limit.get("name") in LIMIT_STATUS:
        return LIMIT_STATUS[limit["name"]]
    return REQUEST_ERROR_STATUS.get(ErrorCode(code))


def error_body(errors: Sequence[GraphQLError], **fields: Any) -> dict[str, Any]:
    """``{"errors": [...]}`` for presented errors, plus any other top-level ``fields``."""
    return {**fields, "errors": [error.formatted for error in errors]}


def error_response(
    error: GraphError | GraphQLError,
    request_id: str,
    *,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """A whole HTTP answer for a request refused at the edge (401, 413, a body that is not JSON)."""
    if isinstance(error, GraphError):
        error = GraphQLError(error.message, original_error=error)
    presented = present_error(error, request_id)
    status = response_status([presented], has_data=False)
    return Response(
        orjson.dumps(error_body([presented])),
        status_code=status,
        headers=dict(headers or {}),
        media_type="application/json",
    )

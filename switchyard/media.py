"""GraphQL over HTTP: the response's media type, the requests refused before the view runs,
and the status rule of each media type.

    content_type, accept = request_headers(scope)   # one scan of the raw headers
    media = negotiate(accept)                       # None: 406
    if scope["method"] == "POST" and not supported_body(content_type): ...  # 415

``application/graphql-response+json`` (the specification's media type) answers a client
that accepts it, one that sends ``*/*`` or no ``Accept`` (the specification's default
since 2025): a request refused before execution answers 4xx and its body has no ``data``.
``application/json`` answers a legacy client that asks for it above the other: a GraphQL
request error (parse, validation, variables, limits, cost) then answers 200, as the
specification's appendix asks; a request that is not a GraphQL request at all (bad JSON,
a body that is not an object) is still 400.

    >>> negotiate(b"application/graphql-response+json, application/json;q=0.9")
    <Media.GRAPHQL_RESPONSE: 'application/graphql-response+json; charset=utf-8'>
    >>> negotiate(b"application/json")
    <Media.JSON: 'application/json'>
    >>> negotiate(b"text/html") is None
    True
"""

from __future__ import annotations

from enum import Enum
from functools import lru_cache

from starlette.responses import Response
from starlette.types import Scope
from strawberry.http import GraphQLHTTPResponse

from switchyard.errors import ErrorCode, GraphError

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
LEGACY_STATUSES_KEPT = frozenset({401, 405, 406, 413, 415, 429, 431, 503})
"""Statuses a legacy ``application/json`` answer keeps: they concern the HTTP exchange
(credentials, a budget's ``Retry-After``, overload), not the GraphQL document."""
MEDIA_STATE = "response_media"
"""Where the view keeps the negotiated ``Media`` in ``scope["state"]``."""
_CONTENT_TYPE = b"content-type"
_ACCEPT = b"accept"
_CACHED_BYTES = 256
"""Longer header values are decided afresh: the caches hold only the usual few."""


class Media(Enum):
    """What answers a GraphQL request; the value is the ``Content-Type`` sent."""

    GRAPHQL_RESPONSE = f"{GRAPHQL_RESPONSE_JSON}; charset=utf-8"
    JSON = "application/json"
    STREAM = "stream"
    """``text/event-stream`` or ``multipart/mixed`` preferred: Strawberry's own answers."""


_EXACT = {
    GRAPHQL_RESPONSE_JSON: (Media.GRAPHQL_RESPONSE,),
    "application/json": (Media.JSON,),
    "text/event-stream": (Media.STREAM,),
    "multipart/mixed": (Media.STREAM,),
}
_WILDCARDS = {
    "*/*": (Media.GRAPHQL_RESPONSE, Media.JSON),
    "application/*": (Media.GRAPHQL_RESPONSE, Media.JSON),
}
_PREFERENCE = (Media.GRAPHQL_RESPONSE, Media.JSON, Media.STREAM)


def request_headers(scope: Scope) -> tuple[bytes, bytes]:
    """The request's ``Content-Type`` and ``Accept`` (empty when absent), in one scan."""
    content_type = accept = b""
    for name, value in scope["headers"]:
        if name == _CONTENT_TYPE:
            content_type = value
        elif name == _ACCEPT:
            accept = value if not accept else accept + b"," + value
    return content_type, accept


def negotiate(accept: bytes) -> Media | None:
    """The media type answering ``accept``; None when it accepts none of them (406)."""
    return _negotiate(accept) if len(accept) <= _CACHED_BYTES else _negotiate.__wrapped__(accept)


@lru_cache(maxsize=512)
def _negotiate(accept: bytes) -> Media | None:
    """The highest ``q`` wins (RFC 9110: the most specific range sets a type's ``q``); among
    equals, a type named outright before one a wildcard admits, then the first listed,
    then the specification's own type.
    """
    if not accept.strip():
        return Media.GRAPHQL_RESPONSE
    best: dict[Media, tuple[float, int, int]] = {}  # q, specificity, -position
    for position, item in enumerate(accept.decode("latin-1").split(",")):
        range_, _, parameters = item.partition(";")
        range_ = range_.strip().lower()
        exact = _EXACT.get(range_)
        kinds, specificity = (exact, 2) if exact else (_WILDCARDS.get(range_, ()), 1)
        if not kinds:
            continue
        q = _quality(parameters)
        for media in kinds:
            known = best.get(media)
            if known is None or specificity > known[1]:
                best[media] = (q, specificity, -position)
    ranked = [
        (score, -_PREFERENCE.index(media), media) for media, score in best.items() if score[0] > 0
    ]
    return max(ranked)[2] if ranked else None


def _quality(parameters: str) -> float:
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "q":
            try:
                return min(max(float(value.strip()), 0.0), 1.0)
            except ValueError:
                return 0.0
    return 1.0


def supported_body(content_type: bytes) -> bool:
    """Whether a POST body of ``content_type`` can be read: JSON in UTF-8 (the default)."""
    if len(content_type) > _CACHED_BYTES:
        return _supported_body.__wrapped__(content_type)
    return _supported_body(content_type)


@lru_cache(maxsize=256)
def _supported_body(content_type: bytes) -> bool:
    essence, _, parameters = content_type.decode("latin-1").partition(";")
    if essence.strip().lower() != "application/json":
        return False
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in (
            "utf-8",
            "utf8",
        ):
            return False
    return True


def apply_status_rule(media: Media | None, body: GraphQLHTTPResponse, status: int) -> int:
    """The status (and body) ``media`` prescribes for an answer ``respond`` gave ``status``.

    ``application/graphql-response+json``: a 4xx/5xx answer failed before execution, so
    its body has no ``data``. ``application/json``: a GraphQL request error answers 200.
    """
    if media is Media.GRAPHQL_RESPONSE:
        if status >= 400:
            body.pop("data", None)
        return status
    if media is Media.JSON and 400 <= status < 500 and status not in LEGACY_STATUSES_KEPT:
        return 200
    return status


class MethodNotAllowed(GraphError):
    """A mutation over GET (405, with ``Allow: POST``)."""

    code = ErrorCode.METHOD_NOT_ALLOWED


class NotAcceptable(GraphError):
    """An ``Accept`` that admits none of the gateway's media types (406)."""

    code = ErrorCode.NOT_ACCEPTABLE


class UnsupportedMediaType(GraphError):
    """A POST body that is not JSON in UTF-8, or without a ``Content-Type`` (415)."""

    code = ErrorCode.UNSUPPORTED_MEDIA_TYPE


NOT_ACCEPTABLE = NotAcceptable(
    f"The Accept header admits none of {GRAPHQL_RESPONSE_JSON} and application/json."
)
UNSUPPORTED_MEDIA_TYPE = UnsupportedMediaType(
    "A POST body must be JSON: Content-Type: application/json (UTF-8)."
)


def label(response: Response, media: Media | None) -> None:
    """Send a JSON answer as ``application/graphql-response+json`` when that was chosen."""
    if media is Media.GRAPHQL_RESPONSE and response.headers.get("content-type", "").startswith(
        "application/json"
    ):
        response.headers["content-type"] = media.value

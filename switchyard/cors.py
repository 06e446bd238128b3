"""Cross-origin requests from browsers: Starlette's ``CORSMiddleware`` over an allow-list.

    [cors]
    allow_origins = ["https://app.example.com", "https://*.example.com"]
    allow_credentials = false
    max_age = 600

Exact origins are compared as they are; ``https://*.example.com`` admits any subdomain
of ``example.com`` (one label or more, never ``example.com`` itself), through the
middleware's ``allow_origin_regex``. The allowed request headers are the gateway's own
(the API key header, the debug and cost headers, the CSRF headers) plus ``allow_headers``.
No origin listed, no unit: CORS then costs nothing (``cors_unit`` returns None).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from switchyard.debug import COST_HEADER, DEBUG_HEADER
from switchyard.request_id import REQUEST_ID_HEADER

DEFAULT_MAX_AGE = 600
GATEWAY_HEADERS = (
    "content-type",
    "authorization",
    DEBUG_HEADER,
    COST_HEADER,
    "apollo-require-preflight",
    "x-apollo-operation-name",
)
"""Request headers a browser page may always send (the API key header is added)."""
EXPOSED_HEADERS = (
    REQUEST_ID_HEADER,
    "retry-after",
    "ratelimit",
    "ratelimit-policy",
    "x-switchyard-execution",
)
"""Response headers a page's script may read besides the CORS-safelisted ones."""
_ORIGIN = re.compile(r"^(https?)://(\*\.)?([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)(:[0-9]{1,5})?$")


class CorsSettings(BaseModel):
    """The ``[cors]`` section; no ``allow_origins``, no CORS."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    allow_origins: list[str] = Field(
        default_factory=list,
        description='origins whose pages may call the gateway: "https://app.example.com", '
        '"https://*.example.com" (its subdomains), or "*" (any, without credentials)',
    )
    allow_headers: list[str] = Field(
        default_factory=list, description="request headers allowed besides the gateway's own"
    )
    expose_headers: list[str] = Field(
        default_factory=list, description="response headers scripts may read, besides X-Request-Id"
    )
    allow_credentials: bool = Field(
        False, description="let pages send cookies and HTTP authentication (never with *)"
    )
    max_age: int = Field(
        DEFAULT_MAX_AGE, ge=0, description="seconds a browser may cache a preflight's answer"
    )

    @model_validator(mode="after")
    def _origins_are_origins(self) -> Self:
        for origin in self.allow_origins:
            if origin == "*":
                if self.allow_credentials:
                    raise ValueError('allow_origins: "*" cannot be used with allow_credentials')
                continue
            if not _ORIGIN.match(origin):
                raise ValueError(
                    f"allow_origins: {origin!r} is not an origin (scheme://host[:port], "
                    'a subdomain wildcard only as "scheme://*.domain")'
                )
        return self

    @property
    def enabled(self) -> bool:
        return bool(self.allow_origins)


def origin_pattern(wildcards: Iterable[str]) -> str | None:
    """One regular expression for the wildcard origins (``re.fullmatch``-ed by Starlette).

    >>> import re
    >>> pattern = origin_pattern(["https://*.example.com"])
    >>> bool(re.fullmatch(pattern, "https://app.eu.example.com"))
    True
    >>> [bool(re.fullmatch(pattern, o)) for o in ("https://example.com", "https://evil-example.com")]
    [False, False]
    """
    alternatives = []
    for origin in wildcards:
        scheme, rest = origin.split("://*.", 1)
        alternatives.append(re.escape(f"{scheme}://") + r"(?:[A-Za-z0-9-]+\.)+" + re.escape(rest))
    return "|".join(f"(?:{a})" for a in alternatives) or None


def cors_unit(
    settings: CorsSettings, *, api_key_header: str, csrf_headers: Iterable[str] = ()
) -> Middleware | None:
    """The http-stage unit answering preflights and adding CORS headers; None when off."""
    if not settings.enabled:
        return None
    exact = [o for o in settings.allow_origins if "*." not in o]
    wildcards = [o for o in settings.allow_origins if "*." in o]
    headers = dict.fromkeys(
        h.lower()
        for h in (*GATEWAY_HEADERS, api_key_header, *csrf_headers, *settings.allow_headers)
    )
    return Middleware(
        CORSMiddleware,
        allow_origins=exact,
        allow_origin_regex=origin_pattern(wildcards),
        allow_methods=["GET", "POST"],
        allow_headers=list(headers),
        allow_credentials=settings.allow_credentials,
        expose_headers=list(dict.fromkeys((*EXPOSED_HEADERS, *settings.expose_headers))),
        max_age=settings.max_age,
    )

"""Typed settings of one upstream, validated from the gateway's config file."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_TIMEOUT = 2.0
DEFAULT_CONNECT_TIMEOUT = 1.0
DEFAULT_MAX_CONNECTIONS = 100
DEFAULT_MAX_KEEPALIVE = 50


class ForwardSettings(BaseModel):
    """What of the caller's identity is sent to this upstream (headers or gRPC metadata)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bearer_token: bool = Field(
        False, description="send the caller's own JWT as `authorization: Bearer ...`"
    )
    identity_headers: bool = Field(
        False,
        description="send x-switchyard-subject, x-switchyard-scopes and x-switchyard-client-id",
    )


class UpstreamSettings(BaseModel):
    """One upstream service: how to reach it and how long to wait.

    ``instances`` are base URLs for REST (``http://127.0.0.1:7001``) and
    ``host:port`` targets for gRPC; calls are spread round-robin over them.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["rest", "grpc"]
    instances: list[str] = Field(min_length=1)
    timeout: float = Field(DEFAULT_TIMEOUT, gt=0, description="seconds per call")
    connect_timeout: float = Field(DEFAULT_CONNECT_TIMEOUT, gt=0)
    max_connections: int = Field(DEFAULT_MAX_CONNECTIONS, ge=1)
    max_keepalive_connections: int = Field(DEFAULT_MAX_KEEPALIVE, ge=0)
    required: bool = Field(True, description="whether /readyz waits for this upstream")
    health_path: str | None = Field(
        None, description="REST path answering 2xx when healthy; without it any answer counts"
    )
    forward: ForwardSettings = ForwardSettings()

    @field_validator("instances")
    @classmethod
    def _instances_match_kind(cls, instances: list[str]) -> list[str]:
        for address in instances:
            if not address or any(c.isspace() for c in address):
                raise ValueError("an instance address may not be empty or contain spaces")
        return instances

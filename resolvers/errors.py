"""Errors a resolver raises on purpose; each carries the stable ``extensions.code`` clients see."""

from __future__ import annotations


class GraphError(Exception):
    """An error whose message is safe to show to the client as it is."""

    code = "INTERNAL_SERVER_ERROR"

    def __init__(self, message: str, **extensions: object) -> None:
        super().__init__(message)
        self.message = message
        self.extensions = extensions


class BadUserInput(GraphError):
    code = "BAD_USER_INPUT"


class Unauthenticated(GraphError):
    code = "UNAUTHENTICATED"


class Forbidden(GraphError):
    code = "FORBIDDEN"

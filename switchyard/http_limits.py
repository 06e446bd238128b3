"""HTTP edge: request headers and bodies over their limits are refused before anything reads them.

    Middleware(HttpLimitsMiddleware, settings=config.limits)

Too many or too large headers answer 431; a declared ``Content-Length`` over
``max_body_bytes`` is refused at once with 413, and a body sent without one is
counted as it arrives and refused as soon as it passes the limit, the rest
left unread. Refusals are ``OPERATION_LIMIT_EXCEEDED`` errors naming the limit.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from switchyard.errors import error_response
from switchyard.limits import LimitName, LimitSettings, exceeded, limit_error


class HttpLimitsMiddleware:
    def __init__(self, app: ASGIApp, *, settings: LimitSettings) -> None:
        self.app = app
        self.settings = settings
        self.max_body_bytes = settings.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope["headers"]
        header_bytes = sum(len(name) + len(value) for name, value in headers)
        for name, measured, what in (
            ("max_header_count", len(headers), "headers"),
            ("max_header_bytes", header_bytes, "bytes of headers"),
        ):
            if exceeded(self.settings, name, measured):  # type: ignore[arg-type]
                await self._refuse(scope, receive, send, name, measured, what)  # type: ignore[arg-type]
                return
        declared = _content_length(scope)
        if declared is not None and exceeded(self.settings, "max_body_bytes", declared):
            await self._refuse(scope, receive, send, "max_body_bytes", declared, "bytes of body")
            return
        if declared is not None or not self.max_body_bytes:
            await self.app(scope, receive, send)
            return
        # Without a declared length, read the body here (the view reads all of it anyway).
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if exceeded(self.settings, "max_body_bytes", size):
                await self._refuse(scope, receive, send, "max_body_bytes", size, "bytes of body")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        name: LimitName,
        measured: int,
        what: str,
    ) -> None:
        allowed: int = getattr(self.settings, name)
        request_id = scope.get("state", {}).get("request_id", "-")
        message = f"The request has {'at least ' if name == 'max_body_bytes' else ''}"
        message += f"{measured} {what}; the limit is {allowed}."
        response = error_response(limit_error(name, allowed, measured, message), request_id)
        # Say so before the client sends the rest: the connection is not reused.
        response.headers["connection"] = "close"
        await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None

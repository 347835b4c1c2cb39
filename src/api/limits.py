"""The API's gate as one pure ASGI middleware (cheaper per request than Starlette's
BaseHTTPMiddleware): the bearer token, checked in constant time, then the body size limit;
a body over the limit is refused with 413 before it is parsed or spooled (by
Content-Length, or by counting a chunked body)."""
from __future__ import annotations

import hmac
import json


class BodyTooLarge(Exception):
    """Raised while the app reads a body over the limit (the app answers 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body over {limit} bytes")
        self.limit = limit


def too_large_json(limit: int) -> dict:
    return {"error": f"request body over {limit} bytes", "hint": "send a smaller image"}


class Gate:
    def __init__(self, app, token: str, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        if not hmac.compare_digest(headers.get(b"authorization", b""), self.expected):
            return await _json(send, 401, {
                "error": "missing or wrong token",
                "hint": "send the header 'Authorization: Bearer <token>' printed by serve"})
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            return await self._refuse(send)
        seen = 0
        started = False

        async def counting_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send) -> None:
        await _json(send, 413, too_large_json(self.max_bytes))


async def _json(send, status: int, payload: dict) -> None:
    body = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})

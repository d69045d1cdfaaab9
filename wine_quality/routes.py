"""A read-only GET route beside BentoML's POST APIs, as plain ASGI middleware."""

from __future__ import annotations

from typing import Any

Scope = dict[str, Any]


class GetJSON:
    """Answer GET (and HEAD) on one path with a fixed JSON document; pass every other request on."""

    def __init__(self, app: Any, path: str, body: bytes) -> None:
        self.app, self.path, self.body = app, path, body
        self.headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != self.path or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 200, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body if scope["method"] == "GET" else b""})

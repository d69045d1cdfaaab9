"""A client's X-Request-ID, echoed on the answer and kept with the wines of that request (wine_quality/capture)."""

from __future__ import annotations

from contextvars import ContextVar

from wine_quality.guard import App, Message, Receive, Scope, Send

HEADER = b"x-request-id"
LONGEST = 200  # a longer id is cut, as it is stored: one header must not cost the database a large row
# The id of the request being answered, where the data plane captures its wines; None when the client sent none.
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


class RequestIds:
    """ASGI middleware: the request's X-Request-ID (if any) in `request_id` for the app, and echoed on its answer."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sent = next((v for k, v in scope.get("headers", ()) if k == HEADER), None) if scope["type"] == "http" else None
        if sent is None:
            await self.app(scope, receive, send)
            return
        value = sent[:LONGEST]
        token = request_id.set(value.decode("latin-1"))

        async def echo(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != HEADER]
                message = {**message, "headers": [*headers, (HEADER, value)]}
            await send(message)

        try:
            await self.app(scope, receive, echo)
        finally:
            request_id.reset(token)

"""Request body limit as plain ASGI middleware: refuses oversized bodies before they are read
whole, whether or not the client sent Content-Length."""

from __future__ import annotations

import json


class BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _message(self) -> str:
        return f"request body larger than the {self.max_bytes} byte limit"

    async def _refuse(self, send) -> None:
        body = json.dumps({"message": self._message()}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_bytes:
                    await self._refuse(send)
                    return
        received = 0
        too_large = False
        answered = False

        async def limited_receive():
            nonlocal received, too_large
            if too_large:  # stop reading: the app gets an empty tail and fails to parse
                return {"type": "http.request", "body": b"", "more_body": False}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    too_large = True
                    raise BodyTooLarge
            return message

        async def guarded_send(message):
            # Whatever the app answers to a truncated body, the client hears the limit.
            nonlocal answered
            if too_large:
                if not answered:
                    answered = True
                    await self._refuse(send)
                return
            answered = answered or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except BodyTooLarge:
            if not answered:
                answered = True
                await self._refuse(send)

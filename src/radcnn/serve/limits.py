"""ASGI middleware for the API: an upload size limit enforced while the body streams in, and a request log.

The limit is checked twice: a declared Content-Length above it is refused before a byte is read, and a body
sent without one (chunked) is counted as it arrives and refused the moment it passes the limit, so an
oversized upload is never spooled to disk in full. The refusal is an `HTTPException(413)`, which FastAPI's
body parsing lets through unchanged (other errors there become a generic 400).

The request log line holds method, path, status, duration, body size and a request number: never a file name,
a header or any content of the upload, because file names and DICOM headers carry patient identifiers.
"""

from __future__ import annotations

import itertools
import logging
import re
import time

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


def loggable(text: str, limit: int = 200) -> str:
    """An error message fit for the log: quoted values (which may be header values, i.e. names or IDs) elided."""
    return _QUOTED.sub("'…'", str(text))[:limit]


def too_large(limit: int) -> HTTPException:
    return HTTPException(413, f"upload larger than the limit of {limit} bytes ({limit / 2**20:.1f} MiB)")


class UploadLimit:
    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app, self.max_bytes = app, int(max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _send_json(send, 413, too_large(self.max_bytes).detail)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise too_large(self.max_bytes)
            return message

        await self.app(scope, counted, send)


async def _send_json(send: Send, status: int, detail: str) -> None:
    import json

    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class RequestLog:
    """One INFO line per request (WARNING for 4xx, ERROR for 5xx)."""

    _numbers = itertools.count(1)

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        number, start, status, size = next(self._numbers), time.perf_counter(), 500, 0

        async def observed_receive() -> Message:
            nonlocal size
            message = await receive()
            size += len(message.get("body", b""))
            return message

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, observed_receive, observed_send)
        finally:
            level = logging.ERROR if status >= 500 else logging.WARNING if status >= 400 else logging.INFO
            log.log(
                level,
                "request %d: %s %s → %d in %.1f ms (%d bytes in)",
                number,
                scope["method"],
                scope["path"],
                status,
                1000 * (time.perf_counter() - start),
                size,
            )

"""The ASGI gateway in front of every route: request ids, the upload limit, security headers, the log line."""

from __future__ import annotations

import logging
import re
import time
import uuid

from .errors import BodyTooLarge, error_response, upload_too_large
from .limits import ServerConfig

log = logging.getLogger("facekeypoints.server")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: Bytes a multipart envelope may add around the file it carries.
MULTIPART_SLACK = 64 * 1024


class Gateway:
    """Pure ASGI middleware: request id, upload size limit, security header, one log line per request.

    The log line has the client address, method, path, status, bytes received and
    sent, time taken and the face count; never the body or the client's file name.
    """

    def __init__(self, app, config: ServerConfig):
        self.app = app
        self.config = config

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        rid = headers.get("x-request-id", "")
        if not _REQUEST_ID.match(rid):
            rid = uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = rid
        limit = self.config.max_upload_bytes
        if headers.get("content-type", "").lower().startswith("multipart/"):
            limit += MULTIPART_SLACK
        info = {"status": 0, "in": 0, "out": 0}

        async def send_logged(message):
            if message["type"] == "http.response.start":
                info["status"] = message["status"]
                message = dict(message)
                message["headers"] = list(message.get("headers", [])) + [
                    (b"x-request-id", rid.encode()),
                    (b"x-content-type-options", b"nosniff"),
                ]
            elif message["type"] == "http.response.body":
                info["out"] += len(message.get("body", b""))
            await send(message)

        async def receive_limited():
            message = await receive()
            if message["type"] == "http.request":
                info["in"] += len(message.get("body", b""))
                if info["in"] > limit:
                    raise BodyTooLarge
            return message

        try:
            length = headers.get("content-length")
            if length is not None and (not length.strip().isdigit() or int(length) > limit):
                bad = not length.strip().isdigit()
                response = (
                    error_response(400, "bad_request", "invalid Content-Length header")
                    if bad
                    else upload_too_large(self.config, headers={"Connection": "close"})
                )
                await response(scope, receive, send_logged)
                return
            await self.app(scope, receive_limited, send_logged)
        finally:
            ms = (time.perf_counter() - t0) * 1e3
            state = scope.get("state", {})
            client = scope.get("client") or ("-", 0)
            path = _CONTROL.sub("?", scope.get("path", "")[:200])  # no forged log lines
            faces = state.get("faces")
            log.info(
                "%s %s %s %d in=%dB out=%dB %.1fms%s rid=%s",
                client[0],
                scope.get("method", "-"),
                path,
                info["status"],
                info["in"],
                info["out"],
                ms,
                f" faces={faces}" if faces is not None else "",
                rid,
            )

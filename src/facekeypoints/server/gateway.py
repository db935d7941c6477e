"""The ASGI gateway in front of every route: request ids, the upload limit, security headers, the log line."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import time
import uuid

from .connections import ConnectionGuard
from .errors import BodyTimeout, BodyTooLarge, error_response, upload_too_large
from .limits import ServerConfig

log = logging.getLogger("facekeypoints.server")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: Bytes a multipart envelope may add around the file it carries.
MULTIPART_SLACK = 64 * 1024
_CHALLENGE = 'Bearer realm="facekeypoints"'


def _has_body(headers: dict[str, str]) -> bool:
    return "transfer-encoding" in headers or headers.get("content-length", "0").strip() not in ("", "0")


class Gateway:
    """Pure ASGI middleware: API key, request id, upload size limit, security header, one log line per request.

    With an API key, every ``/v1`` request must send ``Authorization: Bearer KEY`` (401
    otherwise, before anything else is looked at); the key is compared by its SHA-256
    digest with :func:`hmac.compare_digest`, in constant time. ``/healthz``, the page and
    ``/openapi.json`` stay open.

    The log line has the client address, method, path, status, bytes received and
    sent, time taken and the face count; never the body or the client's file name.

    The body must arrive within :attr:`ServerConfig.body_timeout_s` of the request's
    start (its headers); past it the request is answered 408 and the connection closed.

    An answer sent before the request's body was read to its end (413 from the
    ``Content-Length`` header, 406, 404, ...) is sent whole, then the rest of the body
    is read and thrown away -- at most :attr:`ServerConfig.drain_bytes` bytes, within
    :attr:`ServerConfig.body_timeout_s` of the request's start -- before the answer is
    ended. A client that writes its whole body before reading (Python's urllib,
    requests) then reads the answer; closing with unread bytes would have reset the
    connection under it. A client that sent ``Expect: 100-continue`` has sent no body,
    and gets its answer at once.
    """

    def __init__(self, app, config: ServerConfig, guard: ConnectionGuard | None = None, api_key: str | None = None):
        self.app = app
        self.config = config
        self.guard = guard
        self._key_digest = None if api_key is None else hashlib.sha256(api_key.encode("ascii")).digest()

    def _key_problem(self, scope, authorization: str | None) -> tuple[str, str] | None:
        """Why this request may not pass (a one-line reason and the challenge), or None; only ``/v1`` needs the key."""
        path = scope.get("path", "")
        if self._key_digest is None or scope.get("method") == "OPTIONS":  # CORS preflights carry no credentials
            return None
        if path != "/v1" and not path.startswith("/v1/"):
            return None
        scheme, _, given = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            return "this server needs an API key: send the header 'Authorization: Bearer KEY'", _CHALLENGE
        digest = hashlib.sha256(given.strip().encode("latin-1")).digest()  # equal lengths: compared in constant time
        if not hmac.compare_digest(digest, self._key_digest):
            return "the API key is not valid", _CHALLENGE + ', error="invalid_token"'
        return None

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
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.body_timeout_s
        body = {"done": not _has_body(headers)}  # the request body was read to its end (or the client left)
        drain = headers.get("expect", "").strip().lower() != "100-continue"

        async def drain_body():
            """Read and discard what is left of the body, within the byte and time bounds."""
            length = headers.get("content-length", "").strip()
            if length.isdigit() and int(length) > self.config.drain_bytes:
                return  # more than would ever be read: closing at once is all that is left
            while not body["done"] and info["in"] <= self.config.drain_bytes:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return
                try:
                    message = await asyncio.wait_for(receive(), remaining)
                except asyncio.TimeoutError:
                    return
                if message["type"] != "http.request":
                    return
                info["in"] += len(message.get("body", b""))
                body["done"] = not message.get("more_body", False)

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
                if not message.get("more_body", False) and not body["done"] and drain:
                    if message.get("body"):
                        await send({"type": "http.response.body", "body": message["body"], "more_body": True})
                    await drain_body()
                    message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        async def receive_limited():
            if body["done"]:  # only a disconnect is left to hear of
                return await receive()
            remaining = deadline - loop.time()
            try:
                if remaining <= 0:
                    raise asyncio.TimeoutError
                message = await asyncio.wait_for(receive(), remaining)
            except asyncio.TimeoutError:
                if self.guard is not None:
                    self.guard.body_timeouts += 1
                raise BodyTimeout from None
            if message["type"] == "http.request":
                info["in"] += len(message.get("body", b""))
                if not message.get("more_body", False):
                    body["done"] = True
                if info["in"] > limit:
                    raise BodyTooLarge
            else:
                body["done"] = True
            return message

        try:
            problem = self._key_problem(scope, headers.get("authorization"))
            if problem is not None:
                detail, challenge = problem
                response = error_response(401, "unauthorized", detail, headers={"WWW-Authenticate": challenge})
                await response(scope, receive, send_logged)
                return
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

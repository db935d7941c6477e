"""Every error the service answers is ``{"error": CODE, "detail": MESSAGE}``: the exceptions and handlers."""

from __future__ import annotations

import logging
import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from .limits import ImageRejected, ServerConfig

log = logging.getLogger("facekeypoints.server")

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    408: "request_timeout",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    503: "unavailable",
}


class ApiError(Exception):
    """An error answered as ``{"error": code, "detail": detail}`` with HTTP ``status``."""

    def __init__(self, status: int, code: str, detail: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status, self.code, self.detail, self.headers = status, code, detail, headers


class BodyTooLarge(Exception):
    """Raised from ``receive`` when a streamed body passes the upload limit."""


class BodyTimeout(Exception):
    """Raised from ``receive`` when a body has not all arrived within ``body_timeout_s``."""


def error_response(status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers)


def upload_too_large(config: ServerConfig, headers: dict[str, str] | None = None) -> JSONResponse:
    mb = config.max_upload_bytes / (1024 * 1024)
    return error_response(413, "payload_too_large", f"the upload is over the {mb:g} MiB limit", headers)


def add_error_handlers(app: FastAPI, config: ServerConfig) -> None:
    """Turn every exception a route may raise into the ``{"error", "detail"}`` body."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return error_response(exc.status, exc.code, exc.detail, exc.headers)

    @app.exception_handler(ImageRejected)
    async def _rejected(request: Request, exc: ImageRejected):
        return error_response(exc.status, exc.code, exc.detail)

    @app.exception_handler(BodyTooLarge)
    async def _too_large(request: Request, exc: BodyTooLarge):
        return upload_too_large(config, headers={"Connection": "close"})

    @app.exception_handler(BodyTimeout)
    async def _body_timeout(request: Request, exc: BodyTimeout):
        detail = f"the request's body did not arrive within {config.body_timeout_s:g} s"
        return error_response(408, "request_timeout", detail, headers={"Connection": "close"})

    @app.exception_handler(ClientDisconnect)
    async def _client_left(request: Request, exc: ClientDisconnect):  # the answer goes nowhere; no traceback
        return error_response(400, "client_disconnected", "the client closed the connection before its body ended")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        path = _CONTROL.sub("?", request.url.path[:100])
        if exc.status_code == 404:
            detail = f"no route {request.method} {path}; the routes are listed in /openapi.json"
        elif exc.status_code == 405:
            allowed = (exc.headers or {}).get("Allow", "")
            detail = f"{request.method} is not allowed on {path}" + (f"; use {allowed}" if allowed else "")
        return error_response(exc.status_code, _HTTP_CODES.get(exc.status_code, "error"), detail, exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.error("request %s failed", getattr(request.state, "request_id", "-"), exc_info=exc)
        return error_response(500, "internal_error", "the server failed on this request; it has been logged")

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        parts = []
        for e in exc.errors()[:3]:
            where = ".".join(str(p) for p in e.get("loc", ()) if p not in ("query", "body"))
            parts.append(f"{where}: {e.get('msg', 'invalid')}")
        return error_response(422, "invalid_request", "; ".join(parts) or "invalid request")

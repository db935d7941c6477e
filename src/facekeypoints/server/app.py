"""The web service: a FastAPI app over the core pipeline, and the page at ``/``.

Routes (all JSON errors are ``{"error": CODE, "detail": MESSAGE}``):

- ``POST /v1/landmarks``   image (multipart file or raw body) -> faces, boxes, 68 keypoints
- ``POST /v1/render``      image -> annotated PNG (or JPEG by ``Accept``), ``draw=`` and ``filter=``
- ``GET /v1/models``       the landmark model, face detectors, filters, limits
- ``GET /healthz``         liveness and counters
- ``GET /``                the page (served from the package; no CDN), ``/docs`` the OpenAPI UI

One :class:`~facekeypoints.runtime.KeypointModel` (one ONNX Runtime session,
whose ``run`` is thread-safe) is shared by all requests of a process; each
worker thread has its own face detector, since OpenCV's cascade keeps
per-image state. Decoding and inference run in a bounded thread pool, each
request under a time limit (503 past it), so the event loop never blocks.
Uploads are identified by their bytes and size-checked from the header
(:mod:`facekeypoints.server.limits`) before they are decoded. No route opens
a file by a name the client gives: the page's three files are read from the
package once, at start-up.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources

import numpy as np
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..errors import FaceKeypointsError
from ..landmarks import EDGES, NUM_LANDMARKS
from .limits import FORMATS, CorruptImage, ImageHeader, ImageRejected, ServerConfig, sniff_image

log = logging.getLogger("facekeypoints.server")

#: Version of the JSON document (shared with ``facekeypoints detect --json``).
SCHEMA = "facekeypoints/v1"

DRAW_CHOICES = ("keypoints", "mesh", "box")
_FILTER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: Bytes a multipart envelope may add around the file it carries.
_MULTIPART_SLACK = 64 * 1024

_STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/static/style.css": ("style.css", "text/css; charset=utf-8"),
}
_PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' blob: data:; media-src 'self' blob: mediastream:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)


# --- errors ---------------------------------------------------------------------------------------


class ApiError(Exception):
    """An error answered as ``{"error": code, "detail": detail}`` with HTTP ``status``."""

    def __init__(self, status: int, code: str, detail: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status, self.code, self.detail, self.headers = status, code, detail, headers


class BodyTooLarge(Exception):
    """Raised from ``receive`` when a streamed body passes the upload limit."""


def _error(status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers)


_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    503: "unavailable",
}


# --- response models (for the OpenAPI description; responses are built as plain dicts) -------


class ErrorBody(BaseModel):
    error: str = Field(description="machine-readable code, e.g. unsupported_media_type, image_too_large, timeout")
    detail: str = Field(description="one-line explanation for a person")


class FaceOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    box: list[float] = Field(description="x0, y0, x1, y1 in image pixels")
    score: float = Field(description="face detector confidence")
    keypoints: list[list[float]] = Field(description="68 [x, y] pairs in image pixels (iBUG order, 0-based)")
    pose: dict[str, float] | None = Field(None, description="yaw, pitch, roll in degrees, once head pose exists")
    quality: float | None = Field(
        None, description="how sure the landmark model is of this face, 0-1 (see the model card for the threshold)"
    )
    landmark_scores: list[float] | None = Field(None, description="68 per-landmark confidences, 0-1")


class ModelOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str
    version: str
    input_size: int
    detector: str
    refine: bool
    flip: bool = True
    convention: str = "ibug"


class LandmarksOut(BaseModel):
    schema_: str = Field(SCHEMA, alias="schema")
    model: ModelOut
    width: int
    height: int
    faces: list[FaceOut]
    time_ms: dict[str, float] = Field(description="decode, landmarks (detection + keypoints) and total, in ms")


def _error_responses(*statuses: int) -> dict:
    text = {
        400: "empty body, malformed multipart form, or a bad parameter",
        406: "the Accept header allows neither PNG nor JPEG",
        413: "upload over the size limit (payload_too_large) or image over the pixel limit (image_too_large)",
        415: "the body is not a PNG, JPEG, WebP or BMP image",
        422: "a PNG/JPEG/WebP/BMP whose header or data is corrupt or truncated",
        503: "decode + inference took longer than the time limit (timeout) or the server is saturated (busy)",
    }
    return {s: {"model": ErrorBody, "description": text[s]} for s in statuses}


_BINARY = {"schema": {"type": "string", "format": "binary"}}
_IMAGE_BODY = {
    "requestBody": {
        "required": True,
        "description": "the image as a multipart file field (any name; `file` by convention) or as the raw body",
        "content": {
            "multipart/form-data": {
                "schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}
            },
            "image/jpeg": _BINARY,
            "image/png": _BINARY,
            "image/webp": _BINARY,
            "image/bmp": _BINARY,
            "application/octet-stream": _BINARY,
        },
    }
}


# --- the engine: shared model, per-thread detectors, bounded pool with time limits --------------


@dataclass
class _Result:
    rgb: np.ndarray
    faces: list
    decode_ms: float
    landmarks_ms: float


class Engine:
    """The pipeline behind the routes, safe under concurrent requests."""

    def __init__(self, config: ServerConfig, model=None):
        from ..runtime import KeypointModel

        self.config = config
        # ``model``: an already loaded KeypointModel to share (tests); else ``config.model`` is loaded.
        self.model = model if model is not None else KeypointModel(config.model, threads=1)
        # Build one detector now so a bad detector name or model fails at start-up, not per request.
        probe = self._new_pipeline()
        _ = probe.detector
        self.model.predict(np.zeros((1, self.model.input_size, self.model.input_size, 3), np.uint8))  # warm up
        self.model_info = probe.model_info()
        self._local = threading.local()
        self._executor = ThreadPoolExecutor(config.threads, thread_name_prefix="facekeypoints")
        self._slots: asyncio.Semaphore | None = None
        self._slots_loop: asyncio.AbstractEventLoop | None = None
        self.waiting = 0
        self.running = 0
        self.timeouts = 0
        self.busy = 0
        self.served = 0

    def _new_pipeline(self):
        """A :class:`FaceKeypointDetector` on the shared model with its own face detector."""
        from ..detectors import detector_for
        from ..pipeline import FaceKeypointDetector

        c = self.config
        return FaceKeypointDetector(
            model=self.model,
            detector=detector_for(c.detector, c.min_face),
            refine=c.refine,
            flip=c.flip,
            convention=c.convention,
        )

    def detector(self):
        """This worker thread's :class:`FaceKeypointDetector` (sharing the process's model)."""
        det = getattr(self._local, "detector", None)
        if det is None:
            det = self._new_pipeline()
            self._local.detector = det
        return det

    def decode(self, data: bytes, header: ImageHeader) -> np.ndarray:
        """Decode checked bytes to RGB uint8; a decoder failure is a :class:`CorruptImage`."""
        import cv2

        from .. import image_io

        try:
            rgb = image_io.decode_image(data, "the upload", self.config.max_pixels)
        except FaceKeypointsError as exc:  # one-line messages by contract (truncated, corrupt, ...)
            raise CorruptImage(str(exc).strip().splitlines()[0][:300]) from None
        except cv2.error:
            raise CorruptImage(
                f"the {header.format.upper()} image ({header.width}x{header.height}) could not be decoded: "
                "its data is truncated or corrupt"
            ) from None
        if rgb.shape[0] * rgb.shape[1] > self.config.max_pixels:  # a header that lied
            raise CorruptImage("the decoded image is larger than its header says")
        return rgb

    def landmarks(self, data: bytes, header: ImageHeader) -> _Result:
        """Decode and run the pipeline (in a worker thread)."""
        t0 = time.perf_counter()
        rgb = self.decode(data, header)
        t1 = time.perf_counter()
        faces = self.detector()(rgb)
        t2 = time.perf_counter()
        return _Result(rgb, faces, (t1 - t0) * 1e3, (t2 - t1) * 1e3)

    def render(
        self, data: bytes, header: ImageHeader, draw: set[str], filter_name: str | None, fmt: str
    ) -> tuple[bytes, _Result]:
        """Decode, run the pipeline, apply a filter, draw, encode (in a worker thread)."""
        from ..draw import draw_faces
        from ..outputs import encode_image

        result = self.landmarks(data, header)
        img = result.rgb
        if filter_name is not None and result.faces:
            img = _apply_filter(img, result.faces, filter_name)
        if draw:
            img = draw_faces(
                img, result.faces, points="keypoints" in draw, contours="mesh" in draw, boxes="box" in draw
            )
        return encode_image(img, ".jpg" if fmt == "jpeg" else ".png"), result

    def _get_slots(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._slots is None or self._slots_loop is not loop:
            self._slots, self._slots_loop = asyncio.Semaphore(self.config.threads), loop
        return self._slots

    async def submit(self, fn, *args):
        """Run ``fn(*args)`` in the pool: wait for a free thread, then at most ``timeout_s``.

        A thread's slot is freed when its work really ends, even after its request
        was answered 503, so the pool never holds more work than it has threads.
        """
        cfg = self.config
        slots = self._get_slots()
        if slots.locked() and self.waiting >= cfg.max_queue:
            self.busy += 1
            raise ApiError(503, "busy", "the server is saturated; retry later", {"Retry-After": "1"})
        self.waiting += 1
        try:
            await asyncio.wait_for(slots.acquire(), cfg.queue_timeout_s)
        except asyncio.TimeoutError:
            self.busy += 1
            raise ApiError(
                503, "busy", f"no worker was free within {cfg.queue_timeout_s:g} s; retry later", {"Retry-After": "1"}
            ) from None
        finally:
            self.waiting -= 1
        loop = asyncio.get_running_loop()

        def finished() -> None:  # on the event loop
            self.running -= 1
            slots.release()

        def release(_fut) -> None:  # in the worker thread (or here, if the work never started)
            try:
                loop.call_soon_threadsafe(finished)
            except RuntimeError:  # the loop is gone (shutdown)
                pass

        self.running += 1
        try:
            cfut = self._executor.submit(fn, *args)
        except BaseException:
            finished()
            raise
        cfut.add_done_callback(release)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(cfut), cfg.timeout_s)
        except asyncio.TimeoutError:
            self.timeouts += 1
            raise ApiError(
                503,
                "timeout",
                f"decoding and finding landmarks took longer than {cfg.timeout_s:g} s; try a smaller image",
                {"Retry-After": "1"},
            ) from None

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


# --- filters (written elsewhere; imported lazily) ---------------------------------------------


def _filters_module():
    try:
        from .. import filters
    except ImportError:
        return None
    except Exception:  # noqa: BLE001 - a broken filters module must not take the other routes down
        log.exception("cannot import facekeypoints.filters")
        return None
    return filters if callable(getattr(filters, "apply", None)) else None


def filter_names() -> list[str] | None:
    """The built-in filter names, [] without the filters module, None if it cannot list them."""
    mod = _filters_module()
    if mod is None:
        return []
    for attr in ("available_filters", "available", "names", "list_filters"):
        fn = getattr(mod, attr, None)
        if callable(fn):
            try:
                return sorted(str(n) for n in fn())
            except Exception:  # noqa: BLE001 - a listing bug must not take the API down
                log.exception("filters.%s() failed", attr)
                return None
    for attr in ("FILTERS", "REGISTRY", "BUILTIN"):
        table = getattr(mod, attr, None)
        if isinstance(table, dict):
            return sorted(str(n) for n in table)
    return None


def _check_filter(name: str) -> str:
    """A client's filter name -> a listed built-in name (aliases resolved); never a path or spec file."""
    if not _FILTER_NAME.match(name):
        raise ApiError(400, "invalid_parameter", "filter: a name of letters, digits, '_' and '-' (not a path)")
    if _filters_module() is None:
        raise ApiError(400, "filters_unavailable", "filters are not available in this installation yet")
    names = filter_names()
    if names is None:  # a filters module that cannot list its names: accept none rather than guess
        raise ApiError(400, "filters_unavailable", "this installation's filters cannot be listed")
    aliases = getattr(_filters_module(), "ALIASES", None)
    key = name.lower()
    if isinstance(aliases, dict):
        key = aliases.get(key, key)
    if key not in names:
        valid = ", ".join(names) or "(none)"
        raise ApiError(400, "unknown_filter", f"unknown filter {name!r}; valid names: {valid}")
    return key  # a built-in name: the filters module never looks it up as a file


def _apply_filter(rgb: np.ndarray, faces: list, name: str) -> np.ndarray:
    mod = _filters_module()
    try:
        out = mod.apply(rgb, faces, name)
    except (FaceKeypointsError, KeyError, ValueError) as exc:
        raise ApiError(400, "filter_failed", f"filter {name!r}: {str(exc).strip() or type(exc).__name__}") from None
    out = np.asarray(out)
    if out.dtype != np.uint8 or out.ndim != 3 or out.shape[2] not in (3, 4):
        raise ApiError(500, "internal_error", f"filter {name!r} returned an unexpected image {out.dtype} {out.shape}")
    return np.ascontiguousarray(out[:, :, :3])


# --- request parsing ----------------------------------------------------------------------------


async def read_image(request: Request, config: ServerConfig) -> tuple[bytes, ImageHeader]:
    """The uploaded bytes (multipart file or raw body) and their checked header."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        async with request.form(max_files=1, max_fields=16, max_part_size=64 * 1024) as form:
            uploads = [v for v in form.values() if hasattr(v, "read") and hasattr(v, "filename")]
            if not uploads:
                raise ApiError(400, "no_file", "the multipart form has no file field; send the image as a file")
            data = await uploads[0].read()
        if len(data) > config.max_upload_bytes:
            raise BodyTooLarge
    else:
        data = await request.body()
    return data, sniff_image(data, config.max_pixels)


def parse_draw(values: list[str] | None, has_filter: bool) -> set[str]:
    """``draw`` values (repeated and/or comma-separated) -> a subset of DRAW_CHOICES."""
    if not values:
        return set() if has_filter else set(DRAW_CHOICES)
    out: set[str] = set()
    for value in values:
        for item in value.split(","):
            item = item.strip().lower()
            if item in ("", "none"):
                continue
            if item == "all":
                out |= set(DRAW_CHOICES)
            elif item in DRAW_CHOICES:
                out.add(item)
            else:
                raise ApiError(
                    400, "invalid_parameter", f"draw: unknown value {item[:40]!r}; use keypoints, mesh, box or none"
                )
    return out


def negotiate_format(accept: str | None) -> str:
    """'png' or 'jpeg' from an ``Accept`` header (PNG unless JPEG is preferred); 406 if neither is allowed."""
    if not accept or not accept.strip():
        return "png"
    q = {"png": -1.0, "jpeg": -1.0}
    specificity = {"png": -1, "jpeg": -1}
    for part in accept.split(",")[:32]:
        bits = [b.strip() for b in part.split(";")]
        media = bits[0].lower()
        weight = 1.0
        for b in bits[1:]:
            if b.lower().startswith("q="):
                try:
                    weight = min(max(float(b[2:]), 0.0), 1.0)
                except ValueError:
                    weight = 0.0
        for fmt, full in (("png", "image/png"), ("jpeg", "image/jpeg")):
            level = 2 if media == full else 1 if media == "image/*" else 0 if media == "*/*" else -1
            if level > specificity[fmt]:
                specificity[fmt], q[fmt] = level, weight
    if max(q.values()) <= 0:
        raise ApiError(
            406, "not_acceptable", "this route answers image/png or image/jpeg; the Accept header allows neither"
        )
    return "jpeg" if q["jpeg"] > q["png"] else "png"


# --- the gateway: request ids, body limit, one log line per request -----------------------------


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
            limit += _MULTIPART_SLACK
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
                    _error(400, "bad_request", "invalid Content-Length header")
                    if bad
                    else _upload_too_large(self.config, headers={"Connection": "close"})
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


def _upload_too_large(config: ServerConfig, headers: dict[str, str] | None = None) -> JSONResponse:
    mb = config.max_upload_bytes / (1024 * 1024)
    return _error(413, "payload_too_large", f"the upload is over the {mb:g} MiB limit", headers)


# --- the app --------------------------------------------------------------------------------------


def _load_static() -> dict[str, tuple[bytes, str]]:
    root = resources.files(__package__) / "static"
    return {route: (root.joinpath(name).read_bytes(), ctype) for route, (name, ctype) in _STATIC.items()}


def create_app(config: ServerConfig | None = None, engine: Engine | None = None) -> FastAPI:
    """The ASGI app. ``config`` defaults to :meth:`ServerConfig.from_env` (how ``serve`` configures workers)."""
    config = config or (engine.config if engine is not None else ServerConfig.from_env())
    owns_engine = engine is None
    engine = engine or Engine(config)
    static = _load_static()
    started = time.time()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        if owns_engine:
            engine.close()

    app = FastAPI(
        title="facekeypoints",
        version=__version__,
        description=(
            "68-point facial landmarks over HTTP. Send an image (PNG, JPEG, WebP or BMP) as a multipart file or "
            'as the raw body. Errors are `{"error": CODE, "detail": MESSAGE}`.'
        ),
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.engine = engine
    app.state.config = config

    if config.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(config.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", "Accept", "X-Request-ID"],
            expose_headers=["X-Request-ID", "X-Faces", "X-Time-Ms"],
        )
    app.add_middleware(Gateway, config=config)

    # Every error is {"error", "detail"}.
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return _error(exc.status, exc.code, exc.detail, exc.headers)

    @app.exception_handler(ImageRejected)
    async def _rejected(request: Request, exc: ImageRejected):
        return _error(exc.status, exc.code, exc.detail)

    @app.exception_handler(BodyTooLarge)
    async def _too_large(request: Request, exc: BodyTooLarge):
        return _upload_too_large(config, headers={"Connection": "close"})

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return _error(exc.status_code, _HTTP_CODES.get(exc.status_code, "error"), detail, exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.error("request %s failed", getattr(request.state, "request_id", "-"), exc_info=exc)
        return _error(500, "internal_error", "the server failed on this request; it has been logged")

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        parts = []
        for e in exc.errors()[:3]:
            where = ".".join(str(p) for p in e.get("loc", ()) if p not in ("query", "body"))
            parts.append(f"{where}: {e.get('msg', 'invalid')}")
        return _error(422, "invalid_request", "; ".join(parts) or "invalid request")

    async def run_job(request: Request, fn, *args):
        try:
            result = await engine.submit(fn, *args)
        except (ApiError, ImageRejected):
            raise
        except Exception:
            log.exception("request %s failed", request.state.request_id)
            raise ApiError(500, "internal_error", "the server failed on this image; it has been logged") from None
        engine.served += 1
        return result

    def timing(result: _Result, t0: float) -> dict[str, float]:
        return {
            "decode": round(result.decode_ms, 2),
            "landmarks": round(result.landmarks_ms, 2),
            "total": round((time.perf_counter() - t0) * 1e3, 2),
        }

    @app.post(
        "/v1/landmarks",
        summary="Faces and their 68 landmarks in an image",
        response_model=None,
        responses={200: {"model": LandmarksOut}, **_error_responses(400, 413, 415, 422, 503)},
        openapi_extra=_IMAGE_BODY,
    )
    async def landmarks(request: Request):
        t0 = time.perf_counter()
        data, header = await read_image(request, config)
        result = await run_job(request, engine.landmarks, data, header)
        request.state.faces = len(result.faces)
        h, w = result.rgb.shape[:2]
        return JSONResponse(
            {
                "schema": SCHEMA,
                "model": engine.model_info,
                "width": int(w),
                "height": int(h),
                "faces": [f.to_dict() for f in result.faces],
                "time_ms": timing(result, t0),
            }
        )

    @app.post(
        "/v1/render",
        summary="The image with landmarks, mesh, boxes and/or a filter drawn on it",
        response_class=Response,
        responses={
            200: {
                "content": {"image/png": {}, "image/jpeg": {}},
                "description": "the annotated picture; headers X-Faces (face count) and X-Time-Ms",
            },
            **_error_responses(400, 406, 413, 415, 422, 503),
        },
        openapi_extra=_IMAGE_BODY,
    )
    async def render(
        request: Request,
        draw: list[str] | None = Query(  # noqa: B008 - FastAPI's way of declaring parameters
            None,
            description="what to draw, repeated or comma-separated: keypoints, mesh, box, none, all "
            "(default: all three without a filter, none with one)",
        ),
        filter: str | None = Query(  # noqa: B008 - FastAPI's way of declaring parameters
            None, description="a filter from GET /v1/models 'filters' (e.g. sunglasses)", max_length=64
        ),
    ):
        t0 = time.perf_counter()
        fmt = negotiate_format(request.headers.get("accept"))
        filter_name = _check_filter(filter) if filter else None
        what = parse_draw(draw, filter_name is not None)
        data, header = await read_image(request, config)
        encoded, result = await run_job(request, engine.render, data, header, what, filter_name, fmt)
        request.state.faces = len(result.faces)
        return Response(
            encoded,
            media_type="image/jpeg" if fmt == "jpeg" else "image/png",
            headers={
                "X-Faces": str(len(result.faces)),
                "X-Time-Ms": f"{(time.perf_counter() - t0) * 1e3:.1f}",
                "Vary": "Accept",
            },
        )

    @app.get("/v1/models", summary="The landmark model, face detectors, filters and limits")
    async def models():
        from ..detectors import available_detectors

        return {
            "models": [{**engine.model_info, "default": True}],
            "detectors": available_detectors(),
            "filters": filter_names() or [],
            "landmarks": {"count": NUM_LANDMARKS, "edges": [list(e) for e in EDGES]},
            "limits": {
                "max_upload_bytes": config.max_upload_bytes,
                "max_pixels": config.max_pixels,
                "timeout_s": config.timeout_s,
                "formats": list(FORMATS),
            },
        }

    @app.get("/healthz", summary="Liveness and counters")
    async def healthz():
        return {
            "status": "ok",
            "version": __version__,
            "model": engine.model_info["name"],
            "model_version": engine.model_info["version"],
            "uptime_s": round(time.time() - started, 1),
            "served": engine.served,
            "running": engine.running,
            "waiting": engine.waiting,
            "timeouts": engine.timeouts,
            "busy": engine.busy,
        }

    def page_route(path: str):
        body, ctype = static[path]

        async def serve_static():
            headers = {"Cache-Control": "no-cache"}
            if path == "/":
                headers["Content-Security-Policy"] = _PAGE_CSP
            return Response(body, media_type=ctype, headers=headers)

        return serve_static

    for path in static:
        app.add_api_route(path, page_route(path), methods=["GET"], include_in_schema=False)

    return app

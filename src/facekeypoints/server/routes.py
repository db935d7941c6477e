"""The routes: ``/v1/landmarks``, ``/v1/render``, ``/v1/models`` and ``/healthz``."""

from __future__ import annotations

import logging
import time

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from .. import __version__
from ..landmarks import EDGES, NUM_LANDMARKS
from . import filtering
from .connections import ConnectionGuard
from .engine import Engine, Result
from .errors import ApiError
from .limits import FORMATS, ImageRejected, ServerConfig
from .negotiation import negotiate_format, parse_draw, read_image
from .schemas import IMAGE_BODY, SCHEMA, LandmarksOut, error_responses

log = logging.getLogger("facekeypoints.server")


def api_router(engine: Engine, config: ServerConfig, guard: ConnectionGuard) -> APIRouter:
    """The API's routes, answering with ``engine`` under ``config``'s limits; ``guard``'s counters in /healthz."""
    router = APIRouter()
    started = time.time()

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

    def timing(result: Result, t0: float) -> dict[str, float]:
        return {
            "decode": round(result.decode_ms, 2),
            "landmarks": round(result.landmarks_ms, 2),
            "total": round((time.perf_counter() - t0) * 1e3, 2),
        }

    @router.post(
        "/v1/landmarks",
        summary="Faces and their 68 landmarks in an image",
        response_model=None,
        responses={200: {"model": LandmarksOut}, **error_responses(400, 413, 415, 422, 503)},
        openapi_extra=IMAGE_BODY,
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

    @router.post(
        "/v1/render",
        summary="The image with landmarks, mesh, boxes and/or a filter drawn on it",
        response_class=Response,
        responses={
            200: {
                "content": {"image/png": {}, "image/jpeg": {}},
                "description": "the annotated picture; headers X-Faces (face count) and X-Time-Ms",
            },
            **error_responses(400, 406, 413, 415, 422, 503),
        },
        openapi_extra=IMAGE_BODY,
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
        filter_name = filtering.check_filter(filter) if filter else None
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

    @router.get("/v1/models", summary="The landmark model, face detectors, filters and limits")
    async def models():
        from ..detectors import available_detectors

        return {
            # model_card: the card's key facts from the model's metadata (docs/model_card.md); None for your own models
            "models": [{**engine.model_info, "default": True, "model_card": engine.model.metadata.get("model_card")}],
            "detectors": available_detectors(),
            "filters": filtering.filter_names() or [],
            "landmarks": {"count": NUM_LANDMARKS, "edges": [list(e) for e in EDGES]},
            "limits": {
                "max_upload_bytes": config.max_upload_bytes,
                "max_pixels": config.max_pixels,
                "timeout_s": config.timeout_s,
                "formats": list(FORMATS),
            },
        }

    @router.get("/healthz", summary="Liveness and counters")
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
            "connections": guard.counters(),
        }

    return router

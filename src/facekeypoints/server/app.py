"""The web service: a FastAPI app over the core pipeline, and the page at ``/``.

Routes (all JSON errors are ``{"error": CODE, "detail": MESSAGE}``):

- ``POST /v1/landmarks``   image (multipart file or raw body) -> faces, boxes, 68 keypoints
- ``POST /v1/render``      image -> annotated PNG (or JPEG by ``Accept``), ``draw=`` and ``filter=``
- ``GET /v1/models``       the landmark model, face detectors, filters, limits
- ``GET /healthz``         liveness and counters
- ``GET /``                the page (served from the package; no CDN)
- ``GET /openapi.json``    the OpenAPI description (no ``/docs``: Swagger UI's page loads its script from a CDN)

:func:`create_app` assembles the parts, each in its own module:
:mod:`.engine` (the pipeline in a bounded thread pool, under time limits),
:mod:`.routes` (the API), :mod:`.pages` (the page's three files),
:mod:`.gateway` (request ids, upload limit, body time limit, log line),
:mod:`.connections` and :mod:`.protocol` (header time limit, connection cap), :mod:`.errors` (every
error as one JSON shape), :mod:`.negotiation` (the upload, ``draw=``,
``Accept``), :mod:`.filtering` (the filters glue), :mod:`.schemas` (the
OpenAPI description) and :mod:`.limits` (what is accepted, checked from the
header before decoding; no web framework needed).
"""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI

from .. import __version__
from .connections import GUARD_KEY, ConnectionGuard
from .engine import Engine
from .errors import add_error_handlers
from .filtering import filter_names
from .gateway import Gateway
from .limits import ServerConfig
from .negotiation import negotiate_format, parse_draw
from .pages import add_page_routes
from .routes import api_router
from .schemas import SCHEMA

__all__ = ["SCHEMA", "Engine", "create_app", "filter_names", "negotiate_format", "parse_draw"]


def create_app(config: ServerConfig | None = None, engine: Engine | None = None) -> FastAPI:
    """The ASGI app. ``config`` defaults to :meth:`ServerConfig.from_env` (how ``serve`` configures workers)."""
    config = config or (engine.config if engine is not None else ServerConfig.from_env())
    owns_engine = engine is None
    api_key = config.read_api_key()  # before the model: a bad key file fails fast
    engine = engine or Engine(config)
    guard = ConnectionGuard(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield {GUARD_KEY: guard}  # to the server's connections (see .protocol)
        if owns_engine:
            engine.close()

    app = FastAPI(
        title="facekeypoints",
        version=__version__,
        description=(
            "68-point facial landmarks over HTTP. Send an image (PNG, JPEG, WebP or BMP) as a multipart file or "
            'as the raw body. Errors are `{"error": CODE, "detail": MESSAGE}`.'
        ),
        docs_url=None,  # Swagger UI and ReDoc load their scripts from a CDN: every page we serve is our own
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
            allow_headers=["Content-Type", "Accept", "X-Request-ID", "Authorization"],
            expose_headers=["X-Request-ID", "X-Faces", "X-Time-Ms"],
        )
    app.add_middleware(Gateway, config=config, guard=guard, api_key=api_key)
    add_error_handlers(app, config)
    app.include_router(api_router(engine, config, guard))
    add_page_routes(app)
    if api_key is not None:
        _document_api_key(app)
    return app


def _document_api_key(app: FastAPI) -> None:
    """Say in /openapi.json that every /v1 route needs ``Authorization: Bearer KEY``."""
    plain = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = plain()
            schema.setdefault("components", {})["securitySchemes"] = {
                "apiKey": {"type": "http", "scheme": "bearer", "description": "the server's API key"}
            }
            for path, operations in schema["paths"].items():
                if path.startswith("/v1/"):
                    for operation in operations.values():
                        operation["security"] = [{"apiKey": []}]
                        operation.setdefault("responses", {})["401"] = {
                            "description": "no API key, or not the server's (unauthorized)",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
                        }
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi

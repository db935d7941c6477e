"""The web service and its page (needs the ``[serve]`` extra: FastAPI, uvicorn, python-multipart).

>>> from facekeypoints.server import create_app, ServerConfig
>>> app = create_app(ServerConfig(max_upload_bytes=5 << 20))   # an ASGI app for any ASGI server

``facekeypoints serve`` runs it with uvicorn. :mod:`.limits` (what is accepted,
checked from the header before decoding) needs no web framework.
"""

from .limits import ServerConfig

__all__ = ["ServerConfig", "create_app"]


def __getattr__(name: str):
    if name == "create_app":  # imported on use, so `limits` works without FastAPI installed
        from .app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

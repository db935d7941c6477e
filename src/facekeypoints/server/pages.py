"""The web page at ``/``: three fixed files read from the package once, at start-up.

No route opens a file by a name the client gives.
"""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI
from fastapi.responses import Response

_STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/static/style.css": ("style.css", "text/css; charset=utf-8"),
}
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' blob: data:; media-src 'self' blob: mediastream:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)


def load_static() -> dict[str, tuple[bytes, str]]:
    """Route -> (bytes, content type) of the page's files."""
    root = resources.files(__package__) / "static"
    return {route: (root.joinpath(name).read_bytes(), ctype) for route, (name, ctype) in _STATIC.items()}


def add_page_routes(app: FastAPI) -> None:
    static = load_static()

    def page_route(path: str):
        body, ctype = static[path]

        async def serve_static():
            headers = {"Cache-Control": "no-cache"}
            if path == "/":
                headers["Content-Security-Policy"] = PAGE_CSP
            return Response(body, media_type=ctype, headers=headers)

        return serve_static

    for path in static:
        app.add_api_route(path, page_route(path), methods=["GET"], include_in_schema=False)

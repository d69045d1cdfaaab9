"""The web page at /ui: a small Starlette app serving the static files in wine_quality/ui/, as they are."""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

PAGE_DIR = Path(__file__).resolve().parent / "ui"
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
# The page works offline: everything it loads or calls comes from this server, and the browser is told so.
HEADERS = {
    "content-security-policy": (
        "default-src 'self'; img-src 'self' data: blob:; connect-src 'self'; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'self'; object-src 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",
}


def page_files(folder: Path = PAGE_DIR) -> dict[str, tuple[bytes, str]]:
    """Every servable file of the page by name, with its media type; read once, they are small."""
    return {
        path.name: (path.read_bytes(), MEDIA_TYPES[path.suffix])
        for path in sorted(folder.iterdir())
        if path.is_file() and path.suffix in MEDIA_TYPES
    }


def make_app(folder: Path = PAGE_DIR) -> Starlette:
    """An ASGI app answering GET/HEAD / with index.html and /<name> with that file of the folder."""
    files = page_files(folder)

    async def serve(request: Request) -> Response:
        name = request.path_params.get("name", "index.html")
        if name not in files:
            return Response("Not found", status_code=404, media_type="text/plain")
        body, media_type = files[name]
        return Response(body, media_type=media_type, headers=HEADERS)

    routes = [Route("/", serve, methods=["GET", "HEAD"]), Route("/{name}", serve, methods=["GET", "HEAD"])]
    return Starlette(routes=routes)


ui_app = make_app()

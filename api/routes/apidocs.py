"""The API's own description: `GET /openapi.json` (built by api/openapi.py from the routes this
app serves and the models they use, once, on the first request) and `GET /docs`, Swagger UI
served from the assets shipped in the package (api/static/), never from a CDN."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import orjson
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from api.openapi import build_document

STATIC = Path(__file__).resolve().parent.parent / "static"


def _version() -> str:
    try:
        return version("mqim")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "0"


async def openapi(request: Request) -> Response:
    app_state = request.app.state
    document: bytes | None = getattr(app_state, "openapi_document", None)
    if document is None:
        document = orjson.dumps(build_document(request.app.routes, version=_version()))
        app_state.openapi_document = document
    return Response(document, media_type="application/json")


async def docs(request: Request) -> Response:
    return FileResponse(STATIC / "docs.html", media_type="text/html; charset=utf-8")


routes: list[BaseRoute] = [
    Route("/openapi.json", openapi, methods=["GET"]),
    Route("/docs", docs, methods=["GET"]),
    Mount("/docs/assets", StaticFiles(directory=STATIC / "swagger-ui"), name="docs-assets"),
]

"""The web client at `/app/`: its static files (api/webapp/, shipped in the package) and
`GET /app/config.json`, which tells the page where the broker's MQTT-over-WebSocket listener is.

It serves files and one public setting; it holds no logic of its own (the page talks to the same
HTTP routes and MQTT topics as any other client) and never anything secret."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from api.auth import state_of
from api.envelope import ok
from contract.http import WebAppConfig

WEBAPP_DIR = Path(__file__).resolve().parent.parent / "webapp"


async def config(request: Request) -> JSONResponse:
    listener = state_of(request).ctx.settings.mqtt_ws
    if listener is None:
        return ok(WebAppConfig(mqtt_ws_url=None))
    host = f"[{listener.host}]" if ":" in listener.host else listener.host
    return ok(WebAppConfig(mqtt_ws_url=f"ws://{host}:{listener.port}/mqtt"))


routes: list[BaseRoute] = [
    Route("/app/config.json", config, methods=["GET"]),
    # html=True: /app/ answers index.html; Starlette redirects /app to /app/.
    Mount("/app", app=StaticFiles(directory=WEBAPP_DIR, html=True), name="webapp"),
]

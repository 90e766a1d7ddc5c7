"""What `mqim serve` serves at /app over plain HTTP (no browser needed): the page, its modules,
the vendored MQTT.js with its licence, /app/config.json, and nothing outside api/webapp/."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

import httpx

from tests.stacks import REPO_ROOT, Stack

WEBAPP = REPO_ROOT / "api" / "webapp"


async def test_config_names_the_stacks_websocket_listener(
    server: Stack, http: httpx.AsyncClient
) -> None:
    response = await http.get("/app/config.json")
    assert response.status_code == 200
    ws = server.settings.mqtt_ws
    assert ws is not None
    assert response.json() == {"code": 0, "msg": "ok",
                               "data": {"mqtt_ws_url": f"ws://{ws.host}:{ws.port}/mqtt"}}


async def test_the_page_and_its_files_are_served(http: httpx.AsyncClient) -> None:
    redirect = await http.get("/app")
    assert redirect.status_code in (307, 308)
    assert redirect.headers["location"].endswith("/app/")
    page = await http.get("/app/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<script src="vendor/mqtt.min.js"></script>' in page.text
    for path in sorted(WEBAPP.rglob("*")):
        if path.is_file():
            served = await http.get(f"/app/{path.relative_to(WEBAPP).as_posix()}")
            assert served.status_code == 200, path
            assert served.content == path.read_bytes(), path
    module = await http.get("/app/app.js")
    # A module script with any other type is refused by the browser.
    kind = module.headers["content-type"].split(";")[0]
    assert kind in ("text/javascript", "application/javascript")
    licence = await http.get("/app/vendor/mqtt.LICENSE.md")
    assert "MIT" in licence.text


async def test_nothing_outside_the_webapp_directory(http: httpx.AsyncClient) -> None:
    for path in ("/app/nope.js", "/app/../pyproject.toml", "/app/%2e%2e/routes/webapp.py",
                 "/app/..%2f..%2fpyproject.toml", "/app/js/%2e%2e/%2e%2e/app.py"):
        response = await http.get(path)
        assert response.status_code == 404, path
        assert response.json()["error"] == "not_found", path
    refused = await http.post("/app/index.html")
    assert refused.status_code == 405


def test_every_webapp_file_ships_in_the_wheel() -> None:
    """pyproject's package-data globs for `api` cover every file under api/webapp/."""
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    globs = pyproject["tool"]["setuptools"]["package-data"]["api"]
    files = [p.relative_to(WEBAPP.parent).as_posix() for p in WEBAPP.rglob("*") if p.is_file()]
    assert len(files) >= 8
    # setuptools' package-data globs do not cross "/" unless written with "**".
    missed = [f for f in files if not any(
        fnmatch.fnmatch(f, g) and f.count("/") == g.count("/") for g in globs)]
    assert missed == []


def test_mqttjs_is_vendored_with_its_version_and_licence() -> None:
    vendor = WEBAPP / "vendor"
    version = (vendor / "mqtt.VERSION").read_text(encoding="utf-8").strip()
    assert version.count(".") == 2
    assert (vendor / "mqtt.min.js").read_bytes().startswith(b'"use strict";var mqtt=')
    assert "MQTT.js" in (vendor / "mqtt.LICENSE.md").read_text(encoding="utf-8")
    script = Path(REPO_ROOT / "scripts" / "update_mqttjs.sh").read_text(encoding="utf-8")
    assert "npm pack" in script

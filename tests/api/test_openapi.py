"""The OpenAPI document and the docs page: built from the routes and the models (and refused when
the table api/openapi_routes.py drifts from the routes), valid OpenAPI 3.1, served as built, with
each operation's auth and error statuses what the server really answers; `/docs` served from the
package's own assets."""

from __future__ import annotations

import fnmatch
import importlib
import pkgutil
import re
import tomllib
from typing import Any, get_args

import httpx
import pytest
from openapi_spec_validator import validate
from pydantic import TypeAdapter
from starlette.routing import BaseRoute, Route

import api.routes
from api.envelope import status_of
from api.openapi import REF, TableDriftError, build_document, openapi_path
from api.openapi_hooks import VmqHook
from api.openapi_routes import OPERATIONS
from api.routes import governance, mqtt_hooks
from api.routes.apidocs import STATIC
from contract.errors import ThreadNotFoundError
from contract.threads import ThreadListItem
from tests.helpers import register
from tests.stacks import REPO_ROOT

VERSION = "0.1.0"


def all_routes() -> list[BaseRoute]:
    """The `routes` of every module of api/routes/, as tests/docs/test_http_docs.py finds them."""
    found: list[BaseRoute] = []
    for info in pkgutil.iter_modules(api.routes.__path__):
        found += getattr(importlib.import_module(f"api.routes.{info.name}"), "routes", [])
    return found


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return build_document(all_routes(), version=VERSION)


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method.upper(), path, op) for path, item in document["paths"].items()
            for method, op in item.items()]


def test_every_served_route_has_a_row_and_every_row_a_route(document: dict[str, Any]) -> None:
    served = {(m, p) for m, p, _ in operations(document)}
    assert served == {(m, openapi_path(p)) for m, p in OPERATIONS}
    assert len(served) > 60


def test_a_route_without_a_row_is_refused() -> None:
    async def extra(request: object) -> None: ...

    with pytest.raises(TableDriftError) as refused:
        build_document([*all_routes(), Route("/api/extra/{x:id}", extra, methods=["POST"])],
                       version=VERSION)
    assert refused.value.missing == ["POST /api/extra/{x:id}"]
    assert refused.value.stale == []


def test_a_row_without_a_route_is_refused() -> None:
    kept = [r for r in all_routes() if getattr(r, "path", "") != "/api/sync"]
    with pytest.raises(TableDriftError) as refused:
        build_document(kept, version=VERSION)
    assert refused.value.stale == ["GET /api/sync"]
    assert refused.value.missing == []


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    validate(document)  # raises on any violation of the 3.1 schema, or a dangling $ref


def test_schemas_are_the_models_own(document: dict[str, Any]) -> None:
    components = document["components"]["schemas"]
    body = governance.ThreadPatchBody.model_json_schema(mode="validation", ref_template=REF)
    assert components["ThreadPatchBody"] == body
    item = ThreadListItem.model_json_schema(mode="serialization", ref_template=REF)
    item.pop("$defs")
    assert components["ThreadListItem"] == item
    listed = document["paths"]["/api/threads"]["get"]["responses"]["200"]
    envelope = listed["content"]["application/json"]["schema"]
    assert envelope == {"$ref": REF.format(model="OkThreadListItemList")}
    ok = components["OkThreadListItemList"]
    assert ok["properties"]["data"] == {
        "type": "array", "items": {"$ref": REF.format(model="ThreadListItem")}}
    assert ok["properties"]["code"]["const"] == 0
    assert set(ok["required"]) == {"code", "msg", "data"}
    patch = document["paths"]["/api/threads/{thread_id}"]["patch"]["requestBody"]
    assert patch["content"]["application/json"]["schema"] == {
        "$ref": REF.format(model="ThreadPatchBody")}


def test_path_parameters_follow_the_convertors(document: dict[str, Any]) -> None:
    params = {p["name"]: p["schema"] for p in document["paths"][
        "/api/threads/{thread_id}/announcements/{announcement_id}"]["delete"]["parameters"]}
    assert params["announcement_id"]["type"] == "integer"
    assert re.fullmatch(params["thread_id"]["pattern"], "t-1.x")
    assert not re.fullmatch(params["thread_id"]["pattern"], "a/b")


def test_errors_are_listed_under_the_envelope_status(document: dict[str, Any]) -> None:
    send = document["paths"]["/api/threads/{thread_id}/messages"]["post"]["responses"]
    listed = {status: {e["code"] for e in response.get("x-mqim-errors", [])}
              for status, response in send.items()}
    assert 3010 in listed["403"]
    assert 3001 in listed["404"]
    assert 1006 in listed["429"]
    assert 1012 in listed["413"]
    assert {2001, 2002} <= listed["401"]
    assert 5000 in listed["500"]
    assert "Retry-After" in send["429"]["headers"]
    assert status_of(ThreadNotFoundError) == 404
    for method, path, op in operations(document):
        for status, response in op["responses"].items():
            for error in response.get("x-mqim-errors", []):
                assert int(status) >= 400, (method, path, error)


def test_auth_is_declared(document: dict[str, Any]) -> None:
    for method, path, op in operations(document):
        row = OPERATIONS[next(k for k in OPERATIONS if k[0] == method
                              and openapi_path(k[1]) == path)]
        assert bool(op["security"]) == (row.auth != "none"), (method, path)
        if row.auth in ("bearer", "admin"):
            assert op["security"] == [{"bearer": []}]
            assert "401" in op["responses"]


def test_the_vernemq_header_names_every_hook() -> None:
    assert set(get_args(VmqHook)) == set(mqtt_hooks._VMQ_HOOKS)


def _fill(path: str, op: dict[str, Any]) -> str:
    """A concrete URL for an operation: numbers for numeric ids, an unknown id otherwise."""
    kinds = {p["name"]: p["schema"]["type"] for p in op["parameters"] if p["in"] == "path"}
    return re.sub(r"\{(\w+)\}",
                  lambda m: "1" if kinds[m.group(1)] == "integer" else "nobody1", path)


async def test_the_served_document_is_the_built_one(http: httpx.AsyncClient,
                                                    document: dict[str, Any]) -> None:
    first = await http.get("/openapi.json")
    assert first.status_code == 200
    assert first.headers["content-type"] == "application/json"
    served = first.json()
    assert served["paths"] == document["paths"]
    assert served["components"] == document["components"]
    assert (await http.get("/openapi.json")).content == first.content  # built once


async def test_every_authenticated_operation_refuses_a_missing_token(
        http: httpx.AsyncClient, document: dict[str, Any]) -> None:
    """What the document says of auth is what the server does: 401 (2001) without a token for
    every bearer and admin operation, 403 (1004) for a plain user on every admin one."""
    user = await register(http)
    checked = 0
    for method, path, op in operations(document):
        if not op["security"] or "bearer" not in op["security"][0]:
            continue
        url = _fill(path, op)
        bare = await http.request(method, url)
        assert bare.status_code == 401, (method, path, bare.text)
        assert bare.json()["code"] == 2001
        assert bare.headers["www-authenticate"] == "Bearer"
        if "server admin" in op["description"]:
            denied = await http.request(method, url, headers=user.auth)
            assert denied.status_code == 403, (method, path, denied.text)
            assert {"code": 1004, "error": "forbidden"} in op["responses"]["403"][
                "x-mqim-errors"]
        checked += 1
    assert checked > 50


async def test_the_hooks_are_documented_as_off_without_a_secret(
        http: httpx.AsyncClient, document: dict[str, Any]) -> None:
    for method, path, op in operations(document):
        if path.startswith("/api/internal/"):
            answer = await http.request(method, path)
            assert answer.status_code == 404
            assert "404" in op["responses"]


async def test_the_docs_page_uses_only_its_own_assets(http: httpx.AsyncClient) -> None:
    page = await http.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "SwaggerUIBundle" in page.text
    assert '"openapi.json"' in page.text
    assert not re.search(r"(src|href)=\"(https?:)?//", page.text), "no CDN, no other host"
    assets = re.findall(r"(?:src|href)=\"([^\"]+)\"", page.text)
    assert len(assets) == 3
    kinds = {".js": "javascript", ".css": "text/css", ".png": "image/png"}
    for asset in assets:
        answer = await http.get(f"/{asset}")
        assert answer.status_code == 200, asset
        assert kinds[asset[asset.rfind("."):]] in answer.headers["content-type"]
    license_text = await http.get("/docs/assets/LICENSE")
    assert "Apache License" in license_text.text


@pytest.mark.parametrize("path", [
    "/docs/assets/../openapi.py", "/docs/assets/%2e%2e/docs.html",
    "/docs/assets/..%2f..%2fopenapi.py", "/docs/assets/missing.js",
])
async def test_the_assets_mount_serves_nothing_else(http: httpx.AsyncClient, path: str) -> None:
    answer = await http.get(path)
    assert answer.status_code == 404
    assert "def " not in answer.text


def test_the_assets_ship_in_the_package() -> None:
    """Every file under api/static/ matches a package-data glob, and the licence is there."""
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    globs = config["tool"]["setuptools"]["package-data"]["api"]
    shipped = [p.relative_to(STATIC.parent).as_posix() for p in STATIC.rglob("*") if p.is_file()]
    assert len(shipped) >= 7
    for name in shipped:
        assert any(fnmatch.fnmatch(name, glob) and name.count("/") == glob.count("/")
                   for glob in globs), name
    vendored = {p.name for p in (STATIC / "swagger-ui").iterdir()}
    assert {"LICENSE", "NOTICE", "VERSION", "swagger-ui-bundle.js", "swagger-ui.css"} <= vendored


def test_query_parameters_carry_their_bounds(document: dict[str, Any]) -> None:
    params = {p["name"]: p for p in document["paths"]["/api/threads"]["get"]["parameters"]}
    assert params["limit"]["schema"] == TypeAdapter(
        next(q.type for q in OPERATIONS[("GET", "/api/threads")].query if q.name == "limit")
    ).json_schema()
    assert params["limit"]["schema"]["maximum"] == 200

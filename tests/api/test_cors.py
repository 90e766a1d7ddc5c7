"""CORS with MQIM_CORS_ORIGINS set, on a stack of its own (the shared stacks run with CORS off,
which tests/api/test_observability.py checks): the allowed origin's preflight and requests get
the headers a browser needs; any other origin gets no CORS header at all."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from config import ConfigError, load_settings
from tests.api.test_observability import serve_with
from tests.helpers import make_settings, register

ALLOWED = "https://app.example"


@pytest.fixture(scope="module")
async def cors_http(tmp_path_factory: pytest.TempPathFactory,
                    ) -> AsyncIterator[httpx.AsyncClient]:
    workdir = tmp_path_factory.mktemp("cors")
    settings = make_settings(workdir)
    async with serve_with(settings, workdir / "mqim.log",
                          MQIM_CORS_ORIGINS=f"{ALLOWED}, http://localhost:3000"), \
            httpx.AsyncClient(base_url=f"http://{settings.http}", timeout=10) as client:
        yield client


def cors_headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.startswith("access-control-")}


async def test_preflight_from_an_allowed_origin(cors_http: httpx.AsyncClient) -> None:
    response = await cors_http.options("/api/me", headers={
        "Origin": ALLOWED, "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert response.status_code == 200
    headers = cors_headers(response)
    assert headers["access-control-allow-origin"] == ALLOWED
    assert {"GET", "POST", "PUT", "PATCH", "DELETE"} <= {
        m.strip() for m in headers["access-control-allow-methods"].split(",")}
    allowed_headers = headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed_headers
    assert "content-type" in allowed_headers
    assert "access-control-allow-credentials" not in headers  # bearer tokens, no cookies


async def test_requests_from_an_allowed_origin_carry_the_headers(
    cors_http: httpx.AsyncClient,
) -> None:
    user = await register(cors_http)
    response = await cors_http.get("/api/me", headers={**user.auth, "Origin": ALLOWED})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ALLOWED
    refused = await cors_http.get("/api/me", headers={"Origin": ALLOWED})
    assert refused.status_code == 401  # errors too, so the page can read the envelope
    assert refused.headers["access-control-allow-origin"] == ALLOWED
    assert "retry-after" in refused.headers["access-control-expose-headers"].lower()


@pytest.mark.parametrize("origin", ["https://evil.example", "https://app.example.evil.example",
                                    "http://app.example", "null"])
async def test_other_origins_get_no_cors_headers(cors_http: httpx.AsyncClient,
                                                 origin: str) -> None:
    preflight = await cors_http.options("/api/me", headers={
        "Origin": origin, "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization"})
    assert preflight.status_code == 405  # as without CORS: the route has no OPTIONS
    assert cors_headers(preflight) == {}
    response = await cors_http.post("/api/auth/login", headers={"Origin": origin},
                                    json={"login": "nobody", "password": "x"})
    assert response.status_code == 401
    assert cors_headers(response) == {}


async def test_a_disallowed_method_or_header_is_refused(cors_http: httpx.AsyncClient) -> None:
    response = await cors_http.options("/api/me", headers={
        "Origin": ALLOWED, "Access-Control-Request-Method": "TRACE"})
    assert response.status_code == 400
    response = await cors_http.options("/api/me", headers={
        "Origin": ALLOWED, "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "x-steal-this"})
    assert response.status_code == 400


@pytest.mark.parametrize("value", ["https://app.example/", "app.example", "ftp://x.example",
                                   "https://a.example/path", "*, https://a.example"])
def test_malformed_origins_are_refused(value: str) -> None:
    settings = load_settings({"MQIM_CORS_ORIGINS": value})
    with pytest.raises(ConfigError, match="MQIM_CORS_ORIGINS"):
        settings.cors_origin_list()  # and so Settings.check(), at every start


def test_any_origin() -> None:
    assert load_settings({"MQIM_CORS_ORIGINS": "*"}).cors_origin_list() == ["*"]
    assert load_settings({}).cors_origin_list() == []

"""`/docs` renders the API in a real browser: Swagger UI, from assets mqim serves itself, lists
every operation of `/openapi.json`, and the page asks no other host for anything."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
from playwright.async_api import Browser, Request

from tests.browser.pages import ARTIFACTS
from tests.stacks import Stack


async def test_docs_page_renders_every_operation(
    embedded_server: Stack, embedded_http: httpx.AsyncClient, browser: Browser
) -> None:
    document = (await embedded_http.get("/openapi.json")).json()
    operations = sum(len(item) for item in document["paths"].values())
    assert operations > 80
    origin = f"http://{embedded_server.settings.http}"
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    errors: list[str] = []
    hosts: set[str] = set()
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    def record(request: Request) -> None:
        hosts.add(urlsplit(request.url).netloc)

    page.on("request", record)
    try:
        await page.goto(f"{origin}/docs")
        await page.wait_for_selector(".opblock", timeout=15_000)
        shown = await page.locator(".opblock").count()
        title = await page.locator(".info .title").inner_text()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=ARTIFACTS / "api-docs.png")
    finally:
        await context.close()
    assert shown == operations, (shown, operations)
    assert "mqim" in title.lower()
    assert hosts == {embedded_server.settings.http.__str__()}, hosts
    assert errors == []

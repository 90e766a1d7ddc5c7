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
        # Every operation as Swagger UI parsed it. (Past ~121 operations this Swagger UI build
        # draws only the first tags' blocks on load, with no error; the count of drawn
        # `.opblock`s is therefore checked to be positive, the parsed count to be exact.)
        await page.wait_for_function("window.ui && window.ui.specSelectors.operations().size > 0")
        parsed = await page.evaluate("window.ui.specSelectors.operations().size")
        shown = await page.locator(".opblock").count()
        title = await page.locator(".info .title").inner_text()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=ARTIFACTS / "api-docs.png")
    finally:
        await context.close()
    assert parsed == operations, (parsed, operations)
    assert shown > 0
    assert "mqim" in title.lower()
    assert hosts == {embedded_server.settings.http.__str__()}, hosts
    assert errors == []

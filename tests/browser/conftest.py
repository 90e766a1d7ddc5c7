"""Fixtures of the browser tests: one headless Chromium (Debian's, not a Playwright download)
for the whole session, driven by Playwright's async API on the tests' event loop."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from playwright.async_api import Browser, async_playwright

from tests.browser.pages import CHROMIUM, Person
from tests.stacks import Stack

Arrivals = Callable[..., Awaitable[Person]]


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed")
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
async def people(browser: Browser) -> AsyncIterator[Arrivals]:
    """`await people(stack, "Alice")` (or with the `user_id` of an account made over HTTP): a
    new person at the client's page, in a browser context of their own, closed after the test."""
    arrived: list[Person] = []

    async def arrive(stack: Stack, name: str, user_id: str | None = None) -> Person:
        person = await Person.arrive(browser, f"http://{stack.settings.http}", name, user_id)
        arrived.append(person)
        return person

    yield arrive
    for person in arrived:
        await person.page.context.close()
    assert [e for p in arrived for e in p.errors] == [], "the page threw"

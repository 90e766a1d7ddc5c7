"""Driving the web client (api/webapp/) in Debian's Chromium with Playwright: one `Person` per
browser context (its own sessionStorage, so its own login), and the screenshots each test leaves
in test-artifacts/browser/ for a person to look at."""

from __future__ import annotations

import base64
import shutil
from dataclasses import dataclass

import pytest
from playwright.async_api import Browser, Locator, Page, expect

from tests.helpers import unique_id
from tests.stacks import REPO_ROOT

CHROMIUM = shutil.which("chromium")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Debian's chromium is not installed (apt-get install chromium; .ci/run installs it)",
)
ARTIFACTS = REPO_ROOT / "test-artifacts" / "browser"
PASSWORD = "pass-word-1"


@dataclass
class Person:
    """One user in one browser context, at the client's page."""

    page: Page
    user_id: str
    name: str
    errors: list[str]  # uncaught exceptions and unhandled rejections in the page

    @classmethod
    async def arrive(cls, browser: Browser, base_url: str, name: str,
                     user_id: str | None = None) -> Person:
        context = await browser.new_context(base_url=base_url,
                                            viewport={"width": 900, "height": 640})
        page = await context.new_page()
        person = cls(page, user_id or unique_id(name.lower()[:3]), name, [])
        page.on("pageerror", lambda error: person.errors.append(str(error)))
        await page.goto("/app/")
        return person

    async def register(self) -> None:
        page = self.page
        await page.click("#show-register")
        form = page.locator("#register-form")
        await form.locator("[name=user_id]").fill(self.user_id)
        await form.locator("[name=name]").fill(self.name)
        await form.locator("[name=password]").fill(PASSWORD)
        await form.locator("button[type=submit]").click()
        await self.wait_live()

    async def log_in(self) -> None:
        form = self.page.locator("#login-form")
        await form.locator("[name=login]").fill(self.user_id)
        await form.locator("[name=password]").fill(PASSWORD)
        await form.locator("button[type=submit]").click()
        await self.wait_live()

    async def wait_live(self) -> None:
        """Signed in, and the MQTT-over-WebSocket connection is up."""
        await expect(self.page.locator("#chat")).to_be_visible()
        await expect(self.page.locator("#conn")).to_have_text("live")

    def row(self, title: str) -> Locator:
        return self.page.locator(".thread-row", has_text=title)

    async def open_thread(self, title: str) -> None:
        await self.row(title).click()
        await expect(self.page.locator(".thread-title")).to_have_text(title)

    async def create_group(self, name: str, *members: str) -> None:
        page = self.page
        await page.click("#new-chat")
        dialog = page.locator("#new-chat-dialog")
        await dialog.locator("[name=user_ids]").fill(", ".join(members))
        await dialog.locator("[name=name]").fill(name)
        await dialog.locator("#create-group").click()
        await expect(dialog).to_be_hidden()
        await expect(page.locator(".thread-title")).to_have_text(name)

    async def send(self, text: str) -> None:
        """Type and send; returns once the server confirmed it (no longer pending)."""
        box = self.page.locator(".composer textarea")
        await box.fill(text)
        await box.press("Enter")
        await expect(self.page.locator(".timeline .msg.mine .body", has_text=text)).to_be_visible()
        await expect(self.page.locator(".pending-box .msg")).to_have_count(0)

    def bodies(self) -> Locator:
        return self.page.locator(".timeline .msg .body")


async def save_screenshot(browser: Browser, test_name: str, *people: Person) -> None:
    """test-artifacts/browser/<test_name>.png: each person's window side by side, captioned."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shots = [(p, base64.b64encode(await p.page.screenshot()).decode()) for p in people]
    cells = "".join(
        f'<figure><figcaption>{p.name} ({p.user_id})</figcaption>'
        f'<img src="data:image/png;base64,{shot}"></figure>' for p, shot in shots)
    page = await browser.new_page(viewport={"width": 920 * len(people), "height": 700})
    try:
        await page.set_content(
            "<style>body{margin:0;display:flex;gap:20px;background:#555;font:14px sans-serif}"
            "figure{margin:0}figcaption{color:#fff;padding:4px 8px}img{display:block}</style>"
            + cells)
        await page.screenshot(path=ARTIFACTS / f"{test_name}.png", full_page=True)
    finally:
        await page.close()

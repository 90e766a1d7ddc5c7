"""Two people chat in the web client, each in a browser context of their own, against a real
`mqim serve` (both stacks: the embedded broker's WebSocket listener, and Mosquitto's)."""

from __future__ import annotations

import re

from playwright.async_api import Browser, expect

from tests.browser.conftest import Arrivals
from tests.browser.pages import needs_chromium, save_screenshot
from tests.stacks import Stack

pytestmark = needs_chromium


async def test_two_people_chat_live_and_history_survives_reload(
    server: Stack, browser: Browser, people: Arrivals
) -> None:
    alice, bob = await people(server, "Alice"), await people(server, "Bob")
    await alice.register()
    await bob.register()

    await alice.create_group("Weekend plans", bob.user_id)
    # Bob is told of the group live (thread_added), and the creation event shows in it.
    await expect(bob.row("Weekend plans")).to_be_visible()

    await alice.send("Hi Bob, hiking on Saturday?")
    # Not open on Bob's side yet: one unread, in the list and in the tab's title.
    await expect(bob.row("Weekend plans").locator(".badge")).to_have_text("1")
    await expect(bob.page).to_have_title("(1) mqim")

    await bob.open_thread("Weekend plans")
    await expect(bob.bodies()).to_have_text(["Hi Bob, hiking on Saturday?"])
    await expect(bob.row("Weekend plans").locator(".badge")).to_have_count(0)
    # Bob read it with the thread on screen: Alice sees the read receipt.
    await expect(alice.page.locator(".msg.mine .seen")).to_have_text("Seen by Bob")

    # Bob types: Alice sees it, and sees it stop when his message arrives.
    await bob.page.locator(".composer textarea").press_sequentially("Sure")
    await expect(alice.page.locator(".typing")).to_have_text("Bob is typing…")
    mode = "embedded" if server.settings.embedded_broker else "mosquitto"
    await save_screenshot(browser, f"chat-{mode}-typing", alice, bob)
    await bob.page.locator(".composer textarea").fill("")
    await bob.send("Sure! 9:00 at the station 🥾")
    await expect(alice.bodies().last).to_have_text("Sure! 9:00 at the station 🥾")
    await expect(alice.page.locator(".typing")).to_have_text("")
    await expect(alice.page.locator(".msg.theirs .sender").last).to_have_text("Bob")

    await alice.send("Great, see you there")
    await expect(bob.bodies().last).to_have_text("Great, see you there")

    # A reload keeps the session (sessionStorage) and the open thread (the URL), and the
    # history comes back from the server.
    await bob.page.reload()
    await bob.wait_live()
    await expect(bob.page.locator(".thread-title")).to_have_text("Weekend plans")
    chat = ["Hi Bob, hiking on Saturday?", "Sure! 9:00 at the station 🥾", "Great, see you there"]
    await expect(bob.bodies()).to_have_text(chat)
    await expect(bob.page.locator(".event").first).to_have_text(re.compile(r"created the group$"))
    # Still live after the reload.
    await alice.send("Bring water")
    await expect(bob.bodies()).to_have_text([*chat, "Bring water"])
    await expect(alice.bodies()).to_have_text([*chat, "Bring water"])

    # Bob reacts to the last message: both see the count live; a reload shows it from history.
    water = bob.page.locator(".timeline .msg", has_text="Bring water")
    await water.hover()
    await water.locator("button.react").click()
    await expect(alice.page.locator(".timeline .msg", has_text="Bring water")
                 .locator(".reaction")).to_have_text("👍 1")
    await expect(water.locator(".reaction")).to_have_attribute("aria-pressed", "true")
    # Alice unsends it: it becomes a tombstone on both sides, and stays one after a reload.
    alice.page.once("dialog", lambda dialog: dialog.accept())
    mine = alice.page.locator(".timeline .msg.mine", has_text="Bring water")
    await mine.hover()
    await mine.locator("button.unsend").click()
    await expect(bob.bodies()).to_have_text([*chat, "Message unsent"])
    await alice.page.reload()
    await alice.wait_live()
    await expect(alice.bodies()).to_have_text([*chat, "Message unsent"])
    await expect(alice.page.locator(".reaction")).to_have_count(0)
    await save_screenshot(browser, f"chat-{mode}", alice, bob)

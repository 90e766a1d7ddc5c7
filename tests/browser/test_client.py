"""The web client's other paths, in Chromium against the embedded stack: scrolling back
through a long history, hostile text shown as text, rename/mute/leave, refused sign-ins, and a
send whose first publish is lost being retried with the same client_msg_id."""

from __future__ import annotations

import re

import httpx
from playwright.async_api import Browser, WebSocketRoute, expect

from tests.browser.conftest import Arrivals
from tests.browser.pages import needs_chromium, save_screenshot
from tests.helpers import Account, create_group, register, whole_timeline
from tests.stacks import Stack

pytestmark = needs_chromium
# Accounts made over HTTP sign in on another platform than the page's ("web"), so that the
# page's login does not end the session the test goes on using.
HTTP_PLATFORM = "linux"


async def _send_http(http: httpx.AsyncClient, sender: Account, thread_id: str, body: str) -> None:
    response = await http.post(f"/api/threads/{thread_id}/messages", headers=sender.auth,
                               json={"body": body})
    assert response.status_code == 201, response.text


async def test_history_scrolls_back_to_the_first_message(
    embedded_server: Stack, embedded_http: httpx.AsyncClient, browser: Browser, people: Arrivals
) -> None:
    alice = await register(embedded_http, platform=HTTP_PLATFORM)
    bob = await register(embedded_http, platform=HTTP_PLATFORM)
    thread_id = await create_group(embedded_http, bob, alice)
    for n in range(1, 131):
        await _send_http(embedded_http, bob, thread_id, f"message {n}")
    reader = await people(embedded_server, "Alice", alice.user_id)
    await reader.log_in()
    await expect(reader.row("g").locator(".badge")).to_have_text("130")

    await reader.open_thread("g")
    # The newest page (50 entries) first, scrolled to the end.
    await expect(reader.bodies()).to_have_count(50)
    await expect(reader.bodies().first).to_have_text("message 81")
    await expect(reader.bodies().last).to_have_text("message 130")
    scroller = reader.page.locator(".messages")
    for shown in (100, 130):  # each scroll to the top brings the page before
        await scroller.evaluate("el => { el.scrollTop = 0; }")
        await expect(reader.bodies()).to_have_count(shown)
    await scroller.evaluate("el => { el.scrollTop = 0; }")
    await expect(reader.page.locator(".edge")).to_have_text(
        "This is the beginning of the conversation.")
    await expect(reader.bodies().first).to_have_text("message 1")
    seqs = await reader.page.locator(".timeline > [data-seq]").evaluate_all(
        "els => els.map(el => Number(el.dataset.seq))")
    assert seqs == list(range(1, 132)), "entries missing, repeated or out of order"
    await expect(reader.row("g").locator(".badge")).to_have_count(0)
    await save_screenshot(browser, "history-scroll-back", reader)


async def test_user_text_is_shown_as_text_never_as_markup(
    embedded_server: Stack, embedded_http: httpx.AsyncClient, browser: Browser, people: Arrivals
) -> None:
    hostile = '<img src=x onerror="window.pwned=1"><b>bold</b>'
    alice = await register(embedded_http, platform=HTTP_PLATFORM)
    mallory = await register(embedded_http, name="<i>Mal</i>", platform=HTTP_PLATFORM)
    response = await embedded_http.post("/api/threads", headers=mallory.auth, json={
        "type": "group", "name": hostile, "user_ids": [alice.user_id]})
    assert response.status_code == 201, response.text
    await _send_http(embedded_http, mallory, response.json()["data"]["thread_id"], hostile)

    victim = await people(embedded_server, "Alice", alice.user_id)
    await victim.log_in()
    await victim.open_thread(hostile)
    await expect(victim.bodies()).to_have_text([hostile])
    await expect(victim.page.locator(".msg .sender")).to_have_text("<i>Mal</i>")
    await expect(victim.page.locator(".members")).to_contain_text("<i>Mal</i>")
    assert await victim.page.locator("#chat img, #chat b, #chat i").count() == 0
    assert await victim.page.evaluate("window.pwned") is None
    await save_screenshot(browser, "hostile-text", victim)


async def test_rename_mute_and_leave(
    embedded_server: Stack, embedded_http: httpx.AsyncClient, browser: Browser, people: Arrivals
) -> None:
    owner = await register(embedded_http, name="Olga", platform=HTTP_PLATFORM)
    member = await register(embedded_http, name="Max", platform=HTTP_PLATFORM)
    response = await embedded_http.post("/api/threads", headers=owner.auth, json={
        "type": "group", "name": "Book club", "user_ids": [member.user_id]})
    thread_id = response.json()["data"]["thread_id"]
    olga = await people(embedded_server, "Olga", owner.user_id)
    max_ = await people(embedded_server, "Max", member.user_id)
    await olga.log_in()
    await max_.log_in()
    await olga.open_thread("Book club")
    await max_.open_thread("Book club")

    await olga.page.get_by_role("button", name="Rename").click()
    await olga.page.locator("#rename-dialog [name=name]").fill("Reading club")
    await olga.page.locator("#rename-dialog button[value=ok]").click()
    # Max sees the new name live, in his list and in the open thread's header.
    await expect(max_.page.locator(".thread-title")).to_have_text("Reading club")
    await expect(max_.row("Reading club")).to_be_visible()

    await max_.page.get_by_role("button", name="Mute").click()
    await expect(max_.page.get_by_role("button", name="Unmute")).to_be_visible()
    await expect(max_.row("Reading club").locator(".muted-icon")).to_be_visible()
    listed = await embedded_http.get("/api/threads", headers=member.auth)
    mine = next(t for t in listed.json()["data"] if t["thread_id"] == thread_id)
    assert mine["muted_until"] is not None

    max_.page.once("dialog", lambda dialog: dialog.accept())
    await max_.page.get_by_role("button", name="Leave").click()
    await expect(max_.page.locator(".thread > .empty")).to_have_text("You left the conversation.")
    await expect(max_.row("Reading club")).to_have_count(0)
    await expect(olga.page.locator(".event").last).to_contain_text("left")
    # Olga can send still; Max, gone, does not receive it.
    await olga.send("Next book?")
    await save_screenshot(browser, "rename-mute-leave", olga, max_)
    timeline = await whole_timeline(embedded_http, owner, thread_id)
    assert [e["logMessageType"] for e in timeline if e["type"] == "event"] == [
        "log:subscribe", "log:thread-name", "log:unsubscribe"]


async def test_refused_sign_ins_say_why(
    embedded_server: Stack, embedded_http: httpx.AsyncClient, browser: Browser, people: Arrivals
) -> None:
    taken = await register(embedded_http, platform=HTTP_PLATFORM)
    person = await people(embedded_server, "Eve", taken.user_id)
    form = person.page.locator("#login-form")
    await form.locator("[name=login]").fill(taken.user_id)
    await form.locator("[name=password]").fill("wrong-pass-1")
    await form.locator("button[type=submit]").click()
    await expect(person.page.locator("#signin-error")).to_have_text(re.compile("wrong"))
    await expect(person.page.locator("#chat")).to_be_hidden()

    await person.page.click("#show-register")
    register_form = person.page.locator("#register-form")
    await register_form.locator("[name=user_id]").fill(taken.user_id)
    await register_form.locator("[name=name]").fill("Eve")
    await register_form.locator("[name=password]").fill("pass-word-2")
    await register_form.locator("button[type=submit]").click()
    await expect(person.page.locator("#signin-error")).to_have_text(re.compile("taken|exists"))
    await expect(person.page.locator("#chat")).to_be_hidden()
    await save_screenshot(browser, "refused-sign-in", person)


async def test_lost_send_is_retried_with_the_same_client_msg_id(
    embedded_server: Stack, embedded_http: httpx.AsyncClient, browser: Browser, people: Arrivals
) -> None:
    sender = await register(embedded_http, platform=HTTP_PLATFORM)
    receiver = await register(embedded_http, platform=HTTP_PLATFORM)
    thread_id = await create_group(embedded_http, sender, receiver)
    alice = await people(embedded_server, "Alice", sender.user_id)
    dropped: list[bytes] = []

    def lose_first_send(ws: WebSocketRoute) -> None:
        """Between the page and the broker: drop the first frame that carries the send."""
        server = ws.connect_to_server()

        def from_page(message: str | bytes) -> None:
            data = message.encode() if isinstance(message, str) else message
            if b"retry me" in data and not dropped:
                dropped.append(data)
                return
            server.send(message)

        ws.on_message(from_page)

    await alice.page.route_web_socket(re.compile(r".*/mqtt$"), lose_first_send)
    await alice.log_in()
    await alice.open_thread("g")
    await alice.page.locator(".composer textarea").fill("retry me")
    await alice.page.locator(".composer textarea").press("Enter")
    await expect(alice.page.locator(".pending-box .msg .status")).to_have_text("Sending…")
    # No ack, no echo: after the retry interval it goes again, and is confirmed.
    await expect(alice.page.locator(".timeline .msg.mine .body")).to_have_text("retry me",
                                                                               timeout=10_000)
    await expect(alice.page.locator(".pending-box .msg")).to_have_count(0)
    assert len(dropped) == 1
    first_id = re.search(rb'"client_msg_id":"([^"]+)"', dropped[0])
    assert first_id is not None
    stored = [e for e in await whole_timeline(embedded_http, receiver, thread_id)
              if e["type"] == "message"]
    assert [(e["body"], e["client_msg_id"]) for e in stored] == [
        ("retry me", first_id.group(1).decode())]
    await save_screenshot(browser, "send-retried", alice)


async def test_access_token_is_refreshed_before_it_expires(
    embedded_server: Stack, embedded_http: httpx.AsyncClient, browser: Browser, people: Arrivals
) -> None:
    account = await register(embedded_http, platform=HTTP_PLATFORM)
    person = await people(embedded_server, "Rita", account.user_id)
    # The page's timers on a clock the test moves: 12.5 minutes pass in an instant.
    await person.page.clock.install()
    await person.page.reload()
    await person.log_in()
    ttl = embedded_server.settings.access_token_ttl
    async with person.page.expect_response("**/api/auth/refresh") as refreshed:
        await person.page.clock.fast_forward(int(ttl * 0.85 * 1000))
    assert (await refreshed.value).status == 200
    # The page kept the rotated refresh token: resuming with the old one would be taken as
    # theft and end the session.
    await person.page.reload()
    await person.wait_live()
    await expect(person.page.locator("#me")).to_contain_text(account.user_id)
    sessions = await embedded_http.get("/api/me/sessions", headers=account.auth)
    assert [s["platform"] for s in sessions.json()["data"]] == [HTTP_PLATFORM, "web"]

"""Abuse rate limits (models/ratelimit.py): logins per account and per client address,
registrations and verification codes per address, sends per user.

The first half drives `RateLimits` directly, on the `limits` library's real in-memory storage.
The second half runs `mqim serve` (embedded: the limits do not depend on the broker) with small
limits. Every test client connects from 127.0.0.1, which uvicorn trusts as a proxy by default, so
each test picks its own client address with X-Forwarded-For, as a reverse proxy would send it.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from limits import parse

from config import Settings
from contract.errors import RateLimitedError
from models.ratelimit import RateLimits, address_key, login_key
from tests.api.test_accounts import assert_error
from tests.api.test_bots import bearer, make_bot
from tests.helpers import (
    Account,
    create_group,
    mqtt_session,
    next_event,
    register,
    send_command,
    unique_id,
)
from tests.stacks import Stack, running_stack

# --- RateLimits itself ----------------------------------------------------------------------


async def refused(attempt: Any) -> RateLimitedError:
    with pytest.raises(RateLimitedError) as caught:
        await attempt
    return caught.value


async def test_login_is_refused_past_the_account_limit_until_it_refills() -> None:
    limits = RateLimits(login_account=parse("2/second"))
    await limits.hit_login("alice", "192.0.2.1")
    await limits.hit_login("alice", "192.0.2.2")
    error = await refused(limits.hit_login("alice", "192.0.2.3"))
    assert error.number == 1006
    assert error.retry_after == 1
    assert "account" in error.msg
    await limits.hit_login("bob", "192.0.2.3")  # another account is not affected
    await asyncio.sleep(error.retry_after)  # the window passing is the behaviour under test
    await limits.hit_login("alice", "192.0.2.3")


async def test_a_refused_attempt_costs_nothing() -> None:
    limits = RateLimits(login_account=parse("1/second"))
    await limits.hit_login("carol", "192.0.2.1")
    for _ in range(20):  # hammering while locked does not push the lock further out
        await refused(limits.hit_login("carol", "192.0.2.1"))
    await asyncio.sleep(1)  # one window: the single counted attempt has aged out
    await limits.hit_login("carol", "192.0.2.1")


async def test_spellings_of_one_login_share_its_counter() -> None:
    limits = RateLimits(login_account=parse("3/minute"))
    for spelling in ("Dave@Example.com", " dave@example.com", "DAVE@EXAMPLE.COM"):
        await limits.hit_login(spelling, "192.0.2.1")
    await refused(limits.hit_login("dave@example.com", "192.0.2.9"))
    for spelling in ("+1 (555) 0100", "+1-555-0100", "+15550100"):
        await limits.hit_login(spelling, "192.0.2.1")
    await refused(limits.hit_login("+1 555 0100", "192.0.2.9"))
    assert login_key("Eve") == login_key("eve") != login_key("eve2")
    assert len(login_key("x" * 100_000)) == 64  # a fixed-size key whatever was typed


async def test_the_address_limit_counts_every_account() -> None:
    limits = RateLimits(login_account=parse("2/minute"), login_address=parse("3/minute"))
    await limits.hit_login("frank", "192.0.2.7")
    await limits.hit_login("frank", "192.0.2.7")
    await refused(limits.hit_login("frank", "192.0.2.7"))  # the account; the address counts it
    error = await refused(limits.hit_login("grace", "192.0.2.7"))
    assert "address" in error.msg
    await limits.hit_login("grace", "192.0.2.8")  # another address may still try grace
    # Refused at the address, grace's own budget was not used: one attempt is left of it.
    await limits.hit_login("grace", "192.0.2.9")
    await refused(limits.hit_login("grace", "192.0.2.10"))


async def test_a_successful_login_clears_the_account_not_the_address() -> None:
    limits = RateLimits(login_account=parse("3/minute"), login_address=parse("5/minute"))
    for _ in range(3):
        await limits.hit_login("heidi", "192.0.2.1")
    await limits.login_succeeded("HEIDI")
    for _ in range(2):
        await limits.hit_login("heidi", "192.0.2.1")
    error = await refused(limits.hit_login("heidi", "192.0.2.1"))
    assert "address" in error.msg  # 5 counted at the address: success did not reset it


async def test_ipv6_addresses_count_by_their_64_prefix() -> None:
    assert address_key("2001:db8:1:2::1") == address_key("2001:db8:1:2:ffff::9")
    assert address_key("2001:db8:1:2::1") != address_key("2001:db8:1:3::1")
    assert address_key("::ffff:192.0.2.5") == address_key("192.0.2.5") == "192.0.2.5"
    assert address_key(None) == address_key("") == "unknown"
    limits = RateLimits(register_address=parse("2/minute"))
    await limits.hit_register("2001:db8:7:7::1")
    await limits.hit_register("2001:db8:7:7::2")
    await refused(limits.hit_register("2001:db8:7:7:abcd::3"))
    await limits.hit_register("2001:db8:7:8::1")


async def test_registrations_and_codes_count_per_address() -> None:
    limits = RateLimits(register_address=parse("2/minute"), code_address=parse("1/minute"))
    await limits.hit_register("192.0.2.1")
    await limits.hit_register("192.0.2.1")
    error = await refused(limits.hit_register("192.0.2.1"))
    assert 1 <= error.retry_after <= 60
    await limits.hit_code("192.0.2.1")  # its own budget
    await refused(limits.hit_code("192.0.2.1"))
    await limits.hit_code("192.0.2.2")


async def test_sends_count_per_user_and_by_cost() -> None:
    limits = RateLimits(sends=parse("10/minute"))
    await limits.hit_send("ivan", cost=8)
    await limits.hit_send("ivan", cost=2)
    error = await refused(limits.hit_send("ivan"))
    assert 1 <= error.retry_after <= 60
    await limits.hit_send("judy", cost=10)
    await refused(limits.hit_send("mallory", cost=11))  # more than the whole limit at once


async def test_sends_allow_a_reconnect_flush_at_the_default() -> None:
    limits = RateLimits.from_settings(Settings())
    for _ in range(500):  # a client's offline queue, sent at once after a reconnect
        await limits.hit_send("ivan")


async def test_a_limit_that_is_off_never_refuses() -> None:
    limits = RateLimits.from_settings(Settings(rate_limit_login_account="off",
                                               rate_limit_login_address="1/minute"))
    await limits.hit_login("kim", "192.0.2.1")
    for n in range(50):
        await limits.hit_login("kim", f"192.0.3.{n}")  # the account is off: only addresses count
    await refused(limits.hit_login("kim", "192.0.2.1"))


async def test_the_master_switch_turns_every_limit_off() -> None:
    limits = RateLimits.from_settings(Settings(
        rate_limits=False, rate_limit_login_account="1/hour", rate_limit_login_address="1/hour",
        rate_limit_register_address="1/hour", rate_limit_code_address="1/hour",
        rate_limit_sends="1/hour"))
    for _ in range(50):
        await limits.hit_login("leo", "192.0.2.1")
        await limits.hit_register("192.0.2.1")
        await limits.hit_code("192.0.2.1")
        await limits.hit_send("leo", cost=5)
    await limits.login_succeeded("leo")


# --- over HTTP, against `mqim serve` --------------------------------------------------------

ACCOUNT_LIMIT, ADDRESS_LIMIT, REGISTER_LIMIT, CODE_LIMIT = 3, 8, 4, 2
SEND_LIMIT = 6
_addresses = (f"198.51.100.{n}" for n in itertools.count(1))


def fresh_address() -> dict[str, str]:
    """Headers that make the server see a client address no other test used."""
    return {"X-Forwarded-For": next(_addresses)}


@pytest.fixture(scope="module")
async def limited(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    async with running_stack(
        "embedded", tmp_path_factory.mktemp("limited"), rate_limits=True,
        rate_limit_login_account=f"{ACCOUNT_LIMIT}/minute",
        rate_limit_login_address=f"{ADDRESS_LIMIT}/minute",
        rate_limit_register_address=f"{REGISTER_LIMIT}/minute",
        rate_limit_code_address=f"{CODE_LIMIT}/minute",
        rate_limit_sends=f"{SEND_LIMIT}/minute",
    ) as stack:
        yield stack


@pytest.fixture
async def lhttp(limited: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://{limited.settings.http}", timeout=10) as client:
        yield client


async def register_from(http: httpx.AsyncClient, headers: dict[str, str]) -> Account:
    user_id = unique_id()
    response = await http.post("/api/auth/register", headers=headers, json={
        "user_id": user_id, "name": user_id, "password": "pass-word-1"})
    assert response.status_code == 201, response.text
    data = response.json()["data"]
    return Account(user_id, data["token"], data["refresh_token"], data["mqtt"])


async def login(http: httpx.AsyncClient, who: str, password: str,
                headers: dict[str, str]) -> httpx.Response:
    return await http.post("/api/auth/login", json={"login": who, "password": password},
                           headers=headers)


def assert_limited(response: httpx.Response, about: str) -> None:
    assert_error(response, 429, 1006, "rate_limited")
    assert response.json()["retry_after"] <= 60
    assert about in response.json()["msg"]


@pytest.mark.parametrize("exists", [True, False], ids=["existing", "unknown"])
async def test_wrong_passwords_are_refused_after_the_account_limit(
    lhttp: httpx.AsyncClient, exists: bool
) -> None:
    who = (await register_from(lhttp, fresh_address())).user_id if exists else unique_id()
    client = fresh_address()
    for _ in range(ACCOUNT_LIMIT):
        assert_error(await login(lhttp, who, "wrong-pass-1", client), 401, 2005, "login_failed")
    assert_limited(await login(lhttp, who, "wrong-pass-1", client), "account")


async def test_the_right_password_is_refused_too_while_locked(lhttp: httpx.AsyncClient) -> None:
    account = await register_from(lhttp, fresh_address())
    for _ in range(ACCOUNT_LIMIT):
        await login(lhttp, account.user_id, "wrong-pass-1", fresh_address())  # spread out
    # Otherwise the lock would tell a guesser when the guess was right.
    assert_limited(await login(lhttp, account.user_id, account.password, fresh_address()),
                   "account")
    assert_limited(await login(lhttp, account.user_id.upper(), account.password,
                               fresh_address()), "account")


async def test_other_accounts_may_log_in_from_that_address_until_its_limit(
    lhttp: httpx.AsyncClient,
) -> None:
    locked = await register_from(lhttp, fresh_address())
    other = await register_from(lhttp, fresh_address())
    client = fresh_address()
    for _ in range(ACCOUNT_LIMIT):
        await login(lhttp, locked.user_id, "wrong-pass-1", client)
    assert_limited(await login(lhttp, locked.user_id, "wrong-pass-1", client), "account")
    used = ACCOUNT_LIMIT + 1
    assert (await login(lhttp, other.user_id, other.password, client)).status_code == 200
    used += 1
    for _ in range(ADDRESS_LIMIT - used):
        assert_error(await login(lhttp, unique_id(), "wrong-pass-1", client), 401, 2005,
                     "login_failed")
    assert_limited(await login(lhttp, other.user_id, other.password, client), "address")
    assert (await login(lhttp, other.user_id, other.password, fresh_address())).status_code == 200


async def test_a_successful_login_clears_the_accounts_failures(lhttp: httpx.AsyncClient) -> None:
    account = await register_from(lhttp, fresh_address())
    for _ in range(ACCOUNT_LIMIT - 1):
        await login(lhttp, account.user_id, "wrong-pass-1", fresh_address())
    assert (await login(lhttp, account.user_id, account.password,
                        fresh_address())).status_code == 200
    for _ in range(ACCOUNT_LIMIT):  # a fresh budget: not locked out by earlier typos
        assert_error(await login(lhttp, account.user_id, "wrong-pass-1", fresh_address()),
                     401, 2005, "login_failed")
    assert_limited(await login(lhttp, account.user_id, account.password, fresh_address()),
                   "account")


async def test_registrations_are_limited_per_address(lhttp: httpx.AsyncClient) -> None:
    client = fresh_address()
    for _ in range(REGISTER_LIMIT):
        await register_from(lhttp, client)
    response = await lhttp.post("/api/auth/register", headers=client, json={
        "user_id": unique_id(), "name": "n", "password": "pass-word-1"})
    assert_limited(response, "registrations")
    await register_from(lhttp, fresh_address())


async def test_verification_codes_are_limited_per_address(lhttp: httpx.AsyncClient) -> None:
    client = fresh_address()

    async def ask() -> httpx.Response:
        return await lhttp.post("/api/auth/verify-code", headers=client, json={
            "email": f"{unique_id('e')}@example.com", "purpose": "register"})

    for _ in range(CODE_LIMIT):
        assert (await ask()).status_code == 200
    assert_limited(await ask(), "codes")
    client = fresh_address()
    assert (await ask()).status_code == 200


@pytest.fixture(scope="module")
async def unlimited(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """Tiny limits, all turned off by the master switch."""
    async with running_stack(
        "embedded", tmp_path_factory.mktemp("unlimited"), rate_limits=False,
        rate_limit_login_account="1/hour", rate_limit_login_address="1/hour",
        rate_limit_register_address="1/hour", rate_limit_code_address="1/hour",
    ) as stack:
        yield stack


async def test_limits_turned_off_never_refuse(unlimited: Stack) -> None:
    async with httpx.AsyncClient(base_url=f"http://{unlimited.settings.http}",
                                 timeout=10) as http:
        account = await register(http)
        await register(http)
        for _ in range(50):
            assert_error(await login(http, account.user_id, "wrong-pass-1", {}), 401, 2005,
                         "login_failed")
        assert (await login(http, account.user_id, account.password, {})).status_code == 200
        for _ in range(3):
            response = await http.post("/api/auth/verify-code", json={
                "email": f"{unique_id('e')}@example.com", "purpose": "register"})
            assert response.status_code == 200, response.text


async def test_sends_over_mqtt_and_http_share_one_budget(
    limited: Stack, lhttp: httpx.AsyncClient
) -> None:
    """Past the limit a send is refused with 1006 and retry_after on either transport; another
    user's sends are unaffected."""
    alice = await register_from(lhttp, fresh_address())
    bob = await register_from(lhttp, fresh_address())
    thread_id = await create_group(lhttp, alice, bob)
    prefix = limited.settings.topic_prefix
    for i in range(SEND_LIMIT - 1):
        sent = await lhttp.post(f"/api/threads/{thread_id}/messages", headers=alice.auth,
                                json={"client_msg_id": f"h{i}", "body": "hi"})
        assert sent.status_code == 201, sent.text
    async with mqtt_session(limited.settings, alice) as a, \
            mqtt_session(limited.settings, bob) as b:
        await a.subscribe(f"{prefix}/u/{alice.user_id}", qos=1)
        await b.subscribe(f"{prefix}/u/{bob.user_id}", qos=1)
        replies = []
        for req in ("last", "over"):
            await a.publish(f"{prefix}/up/{alice.user_id}",
                            send_command(thread_id, req, "hi", req=req), qos=1)
            replies.append(await next_event(a, is_reply_to(req)))
        await b.publish(f"{prefix}/up/{bob.user_id}", send_command(thread_id, "b1", "hey"),
                        qos=1)
        bobs = await next_event(b, lambda t, e: e.get("req") == "b1")
    assert replies[0]["type"] == "ack"
    assert (replies[1]["type"], replies[1]["code"], replies[1]["error"]) == (
        "error", 1006, "rate_limited")
    assert 1 <= replies[1]["retry_after"] <= 60
    assert bobs["type"] == "ack"
    over_http = await lhttp.post(f"/api/threads/{thread_id}/messages", headers=alice.auth,
                                 json={"client_msg_id": "h-over", "body": "hi"})
    assert_error(over_http, 429, 1006, "rate_limited")
    history = await lhttp.get(f"/api/threads/{thread_id}/messages", headers=alice.auth)
    bodies = [e.get("body") for e in history.json()["data"] if e["type"] == "message"]
    assert len(bodies) == SEND_LIMIT + 1  # alice's allowed sends and bob's one


async def test_a_bot_is_held_to_the_same_send_limit(lhttp: httpx.AsyncClient) -> None:
    """A bot's API token counts against the bot's own budget, as a user's session does."""
    owner = await register_from(lhttp, fresh_address())
    bot_id, token = await make_bot(lhttp, owner)
    thread_id = await create_group(lhttp, owner, Account(bot_id, token, "", {}))
    for i in range(SEND_LIMIT):
        sent = await lhttp.post(f"/api/threads/{thread_id}/messages", headers=bearer(token),
                                json={"client_msg_id": f"b{i}", "body": "beep"})
        assert sent.status_code == 201, sent.text
    over = await lhttp.post(f"/api/threads/{thread_id}/messages", headers=bearer(token),
                            json={"client_msg_id": "b-over", "body": "beep"})
    assert_error(over, 429, 1006, "rate_limited")
    # The owner's budget is their own.
    mine = await lhttp.post(f"/api/threads/{thread_id}/messages", headers=owner.auth,
                            json={"client_msg_id": "o1", "body": "hi"})
    assert mine.status_code == 201, mine.text


def is_reply_to(req: str) -> Callable[[str, dict[str, Any]], bool]:
    return lambda topic, event: event.get("req") == req

"""Webhooks are delivered from a durable outbox (docs/webhooks.md): a receiver that fails its
first 3 attempts, with the server restarted while they fail, then recovers, gets every event
once and in order; a delivery that gives up after its last attempt is sent again on replay."""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest

from config import Settings
from tests.api.test_webhooks import add_hook, receiver, send
from tests.helpers import create_group, make_settings, register
from tests.stacks import (
    Stack,
    external_broker_settings,
    mosquitto_for,
    postgres_database,
    running_stack,
    serve_process,
)

FAILURES = 3


@pytest.mark.parametrize("mode", ["embedded", "mosquitto"])
async def test_failing_receiver_gets_every_event_once_in_order_across_a_restart(
    tmp_path: Path, mode: str,
) -> None:
    # Retries 0.5 s, 1 s, 2 s apart: the server is stopped while the first ones fail.
    base = make_settings(tmp_path, webhook_backoff_ms=500)
    async with AsyncExitStack() as outer:
        got = await outer.enter_async_context(receiver())
        got.fail = lambda r: r.failed < FAILURES
        db_url = await outer.enter_async_context(postgres_database()) if mode != "embedded" else ""

        async def start(run: AsyncExitStack) -> tuple[Stack, httpx.AsyncClient]:
            settings: Settings = base
            if mode != "embedded":
                port, ws = await run.enter_async_context(mosquitto_for(base, tmp_path))
                settings = external_broker_settings(base, port, ws, database_url=db_url)
            stack = await run.enter_async_context(serve_process(settings, tmp_path / "mqim.log"))
            http = await run.enter_async_context(
                httpx.AsyncClient(base_url=f"http://{settings.http}", timeout=10))
            return stack, http

        async with AsyncExitStack() as run:
            stack, http = await start(run)
            admin, alice = await register(http), await register(http)
            await stack.cli("admin", "grant", admin.user_id)
            hook = await add_hook(http, admin, got, events=["message"])
            thread_id = await create_group(http, alice, admin)
            sent = [await send(http, alice, thread_id, f"m{i}") for i in range(5)]
            await got.wait_for(lambda: got.failed >= 1)
        restarted_at = time.monotonic()  # the server is down: what is pending waits in the table

        async with AsyncExitStack() as run:
            stack, http = await start(run)
            await got.wait_for(lambda: len(got.events(thread_id)) >= len(sent), seconds=30)
            events = got.events(thread_id)
            assert [e["event"]["message_id"] for e in events] == [s["message_id"] for s in sent]
            assert len({e["delivery"] for e in events}) == len(sent)  # each once
            assert got.failed == FAILURES
            assert got.accepted_at[0] > restarted_at  # it recovered after the restart
            rows = (await http.get(f"/api/webhooks/{hook['id']}/deliveries", headers=admin.auth,
                                   params={"limit": 200})).json()["data"]
            first = min(rows, key=lambda r: r["id"])
            assert first["status"] == "delivered"
            assert first["attempts"] == FAILURES + 1
            assert first["last_error"] is None


async def test_replay_sends_a_failed_delivery_again(tmp_path: Path) -> None:
    async with (running_stack("embedded", tmp_path, webhook_max_attempts=2) as stack,
                httpx.AsyncClient(base_url=f"http://{stack.settings.http}", timeout=10) as http,
                receiver() as got):
        broken = True
        got.fail = lambda r: broken
        admin, alice = await register(http), await register(http)
        await stack.cli("admin", "grant", admin.user_id)
        hook = await add_hook(http, admin, got, events=["message"])
        path = f"/api/webhooks/{hook['id']}"
        thread_id = await create_group(http, alice, admin)
        await send(http, alice, thread_id, "lost then found")

        async def failed() -> list[dict[str, object]]:
            response = await http.get(f"{path}/deliveries", headers=admin.auth,
                                      params={"status": "failed"})
            rows: list[dict[str, object]] = response.json()["data"]
            return rows

        deadline = time.monotonic() + 15
        while not (rows := await failed()):
            assert time.monotonic() < deadline, "the delivery never gave up"
            await asyncio.sleep(0.05)  # polling the worker's progress
        assert rows[0]["attempts"] == 2
        assert rows[0]["last_status"] == 500
        assert rows[0]["last_error"] == "HTTP 500"
        assert got.failed == 2
        assert got.events(thread_id) == []

        broken = False
        replayed = await http.post(f"{path}/replay", headers=admin.auth)
        assert replayed.json()["data"] == {"replayed": 1}
        await got.wait_for(lambda: len(got.events(thread_id)) == 1)
        assert got.events(thread_id)[0]["event"]["body"] == "lost then found"
        assert await failed() == []
        again = await http.post(f"{path}/replay", headers=admin.auth)
        assert again.json()["data"] == {"replayed": 0}


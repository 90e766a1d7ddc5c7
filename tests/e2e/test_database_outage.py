"""The database goes away under a running bridge (Mosquitto + a PostgreSQL of the test's own,
stopped hard and started again): the sends that arrive meanwhile are neither answered with an
error nor lost. The bridge holds their batch un-acked and retries it with backoff; once the
database is back they are stored once and acked, and the next send is acked at once (the
backoff starts afresh with every batch)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pwd
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import (
    create_group,
    free_port,
    make_settings,
    mqtt_session,
    next_event,
    register,
    send_command,
)
from tests.stacks import external_broker_settings, mosquitto_for, serve_process

PG_BIN = Path("/usr/lib/postgresql")


def is_reply(req: str) -> Callable[[str, dict[str, Any]], bool]:
    return lambda topic, event: event.get("req") == req


def _pg_tool(name: str) -> str:
    versions = sorted(PG_BIN.glob("*/bin"), key=lambda p: int(p.parent.name))
    if not versions:
        pytest.skip("PostgreSQL server binaries are not installed")
    return str(versions[-1] / name)


async def _run_as_postgres(*argv: str) -> None:
    """PostgreSQL refuses to run as root: run its tools as the postgres user when we are root."""
    command = list(argv)
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await process.communicate()
    assert process.returncode == 0, out.decode()


@asynccontextmanager
async def own_postgres() -> AsyncIterator[tuple[int, Path]]:
    """A PostgreSQL cluster of this test's own on a free port (so it can be stopped). Its
    directory is outside pytest's tmp dirs, which the postgres user may not enter."""
    workdir = Path(tempfile.mkdtemp(prefix="mqim-pg-"))
    if os.geteuid() == 0:
        shutil.chown(workdir, pwd.getpwnam("postgres").pw_uid)
    data, port = workdir / "data", free_port()
    try:
        await _run_as_postgres(_pg_tool("initdb"), "-D", str(data), "-A", "trust",
                               "-U", "postgres")
        yield port, data
    finally:
        with contextlib.suppress(AssertionError):  # already stopped
            await _stop(data)
        shutil.rmtree(workdir, ignore_errors=True)


async def _start(data: Path, port: int) -> None:
    await _run_as_postgres(
        _pg_tool("pg_ctl"), "-D", str(data), "-w", "-l", str(data.parent / "log"), "-o",
        f"-p {port} -k {data.parent} -c listen_addresses=127.0.0.1 -c fsync=off", "start")


async def _stop(data: Path) -> None:
    await _run_as_postgres(_pg_tool("pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")


async def test_database_outage_loses_and_refuses_no_send(tmp_path: Path) -> None:
    base = make_settings(tmp_path)
    async with AsyncExitStack() as stack:
        port, data = await stack.enter_async_context(own_postgres())
        await _start(data, port)
        port_, ws = await stack.enter_async_context(mosquitto_for(base, tmp_path))
        settings = external_broker_settings(
            base, port_, ws, database_url=f"postgres://postgres@127.0.0.1:{port}/postgres")
        await stack.enter_async_context(serve_process(settings, tmp_path / "mqim.log"))
        http = await stack.enter_async_context(
            httpx.AsyncClient(base_url=f"http://{settings.http}", timeout=10))
        alice, bob = await register(http), await register(http)
        thread_id = await create_group(http, alice, bob)
        prefix = settings.topic_prefix
        client = await stack.enter_async_context(mqtt_session(settings, alice))
        await client.subscribe(f"{prefix}/u/{alice.user_id}", qos=1)
        up = f"{prefix}/up/{alice.user_id}"

        await _stop(data)
        for i in range(3):
            await client.publish(up, send_command(thread_id, f"out-{i}", f"during {i}"), qos=1)
        # Nothing is answered while the database is away: no error, and no false ack.
        with pytest.raises(TimeoutError):
            await next_event(client, lambda t, e: True, timeout=2.5)
        await _start(data, port)
        answers = [await next_event(client, is_reply(f"out-{i}"), timeout=30) for i in range(3)]
        assert [a["type"] for a in answers] == ["ack"] * 3, answers
        started = time.monotonic()
        await client.publish(up, send_command(thread_id, "after", "after"), qos=1)
        after = await next_event(client, is_reply("after"), timeout=10)
        latency = time.monotonic() - started
        history = await http.get(f"/api/threads/{thread_id}/messages", headers=alice.auth)
    assert after["type"] == "ack"
    assert latency < 1.0  # no leftover backoff
    bodies = [json.dumps(e.get("body")) for e in history.json()["data"]]
    assert bodies == ["null", '"during 0"', '"during 1"', '"during 2"', '"after"']

"""kill -9 of `mqim serve` in the embedded mode, mid-burst: after a restart on the same data dir,
every message the bridge acknowledged is stored exactly once, and each thread's seqs are gapless.
Clients then resend what was never acknowledged, with the same client_msg_id, as the contract
tells them to: those are stored once too (a send that committed just before the kill is answered
as a duplicate, never stored twice)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path

import aiomqtt
import httpx

from tests.helpers import (
    Account,
    create_group,
    make_settings,
    mqtt_session,
    received_event,
    register,
    send_command,
    whole_timeline,
)
from tests.stacks import Stack, serve_process, start_mqim, stop_mqim
from tests.stacks import _wait_healthy as wait_healthy

SENDERS, PER_SENDER = 4, 500
KILL_AFTER_ACKS = 100
WINDOW = 50  # unacknowledged sends per sender


async def _send_and_collect(settings_client: aiomqtt.Client, prefix: str, sender: Account,
                            thread_id: str, indices: list[int], acked: set[str],
                            on_ack: Callable[[], None] = lambda: None) -> None:
    """Send `indices`, at most WINDOW unacknowledged at a time (as a client holds back), and
    record every ack until all are acked or the link drops. The window keeps the burst going
    when the kill lands, however fast the server stores compared with this client."""
    client = settings_client
    await client.subscribe(f"{prefix}/u/{sender.user_id}", qos=1)
    unsent = iter(indices)

    async def send_next() -> None:
        if (i := next(unsent, None)) is not None:
            await client.publish(f"{prefix}/up/{sender.user_id}",
                                 send_command(thread_id, f"{sender.user_id}-{i}", f"m{i}"), qos=1)

    for _ in range(WINDOW):
        await send_next()
    async with asyncio.timeout(60):
        async for message in client.messages:
            event = received_event(message.payload)
            assert event["type"] == "ack", event
            acked.add(event["req"])
            on_ack()
            if all(f"{sender.user_id}-{i}" in acked for i in indices):
                return
            await send_next()


async def test_kill_9_mid_burst_loses_no_acked_message(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    log = tmp_path / "mqim.log"
    prefix = settings.topic_prefix
    acked_before: set[str] = set()
    killed = asyncio.Event()
    senders: list[Account] = []
    threads: list[str] = []
    server: list[Stack] = []

    def count_ack() -> None:
        # Killed right here, from the ack that crosses the line: a task woken for it could run
        # only after the senders had drained every buffered ack, i.e. after the burst.
        if len(acked_before) >= KILL_AFTER_ACKS and not killed.is_set():
            killed.set()
            server[0].process.send_signal(signal.SIGKILL)

    async def burst(index: int) -> None:
        sender = senders[index]
        try:
            async with mqtt_session(settings, sender, max_inflight_messages=100) as client:
                await _send_and_collect(client, prefix, sender, threads[index % 2],
                                        list(range(PER_SENDER)), acked_before, count_ack)
        except (aiomqtt.MqttError, TimeoutError):
            assert killed.is_set()  # only the kill may cut a sender short


    # serve_process's own exit (SIGTERM) finds the process already dead: fine.
    async with serve_process(settings, log) as first, \
            httpx.AsyncClient(base_url=f"http://{settings.http}", timeout=30) as http:
        server.append(first)
        senders += [await register(http) for _ in range(SENDERS)]
        threads += [await create_group(http, senders[0], *senders[1:]) for _ in range(2)]
        await asyncio.gather(*(burst(i) for i in range(SENDERS)))
        await first.process.wait()
    assert killed.is_set()
    assert 0 < len(acked_before) < SENDERS * PER_SENDER  # the kill did land mid-burst

    second = await start_mqim(settings, log, "serve")
    try:
        await wait_healthy(second)
        async with httpx.AsyncClient(base_url=f"http://{settings.http}", timeout=30) as http:
            stored = await _stored_bodies(http, senders[0], threads)
            # Every acked message is there, exactly once.
            for req in acked_before:
                sender_id, _, i = req.rpartition("-")
                thread_id = threads[[s.user_id for s in senders].index(sender_id) % 2]
                assert stored[thread_id].count(f"{sender_id}:m{i}") == 1, req
            # Clients resend what got no ack; nothing is stored twice.
            acked_after: set[str] = set()
            for index, sender in enumerate(senders):
                missing = [i for i in range(PER_SENDER)
                           if f"{sender.user_id}-{i}" not in acked_before]
                if missing:
                    async with mqtt_session(settings, sender, max_inflight_messages=100) as c:
                        await _send_and_collect(c, prefix, sender, threads[index % 2], missing,
                                                acked_after)
            stored = await _stored_bodies(http, senders[0], threads)
        for index, sender in enumerate(senders):
            mine = [b for b in stored[threads[index % 2]] if b.startswith(f"{sender.user_id}:")]
            assert sorted(mine) == sorted(f"{sender.user_id}:m{i}" for i in range(PER_SENDER))
    finally:
        await stop_mqim(second)


async def _stored_bodies(http: httpx.AsyncClient, reader: Account, threads: list[str],
                         ) -> dict[str, list[str]]:
    """Each thread's messages as `sender:body`, after checking its seqs are 1..n, gapless."""
    stored: dict[str, list[str]] = {}
    for thread_id in threads:
        entries = await whole_timeline(http, reader, thread_id)
        stored[thread_id] = [f"{e['sender_id']}:{e['body']}" for e in entries
                             if e["type"] == "message"]
    return stored

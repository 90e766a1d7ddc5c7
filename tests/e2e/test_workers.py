"""Scale-out: three `mqim bridge` workers share the uplink through Mosquitto's shared
subscription, with `mqim api` beside them, on PostgreSQL. One worker is SIGKILLed midway and
restarted under the same worker id, as a supervisor would: every message is stored exactly once
and every thread's seqs stay gapless, with no client retries at all (the broker redelivers what
the dead worker had not acknowledged)."""

from __future__ import annotations

import asyncio
import signal
from contextlib import AsyncExitStack
from pathlib import Path

import httpx

from tests.helpers import (
    create_group,
    make_settings,
    mqtt_session,
    received_event,
    register,
    send_command,
    whole_timeline,
)
from tests.stacks import (
    Stack,
    external_broker_settings,
    mosquitto_for,
    mqim_process,
    postgres_database,
    start_mqim,
    stop_mqim,
)

SENDERS, PER_SENDER, WORKERS = 5, 400, 3


async def wait_for_log(stack: Stack, text: str, count: int = 1) -> None:
    """Poll a process's log until `text` appears `count` times (a readiness signal)."""
    async with asyncio.timeout(60):
        while stack.log_path.read_text(errors="replace").count(text) < count:
            assert stack.process.returncode is None, stack.log_path.read_text()[-3000:]
            await asyncio.sleep(0.05)


async def test_killed_worker_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    base = make_settings(tmp_path)
    async with AsyncExitStack() as stack:
        db_url = await stack.enter_async_context(postgres_database())
        port, ws = await stack.enter_async_context(mosquitto_for(base, tmp_path))
        settings = external_broker_settings(base, port, ws, database_url=db_url)
        await stack.enter_async_context(mqim_process(settings, tmp_path / "api.log", "api"))
        workers: dict[int, Stack] = {}

        async def stop_workers() -> None:
            for worker in workers.values():
                await stop_mqim(worker)

        stack.push_async_callback(stop_workers)
        for n in range(1, WORKERS + 1):
            workers[n] = await start_mqim(settings, tmp_path / f"bridge-{n}.log", "bridge",
                                          "--worker", str(n))
        for worker in workers.values():
            await wait_for_log(worker, "bridge consuming")
        http = await stack.enter_async_context(
            httpx.AsyncClient(base_url=f"http://{settings.http}", timeout=30))
        senders = [await register(http) for _ in range(SENDERS)]
        threads = [await create_group(http, senders[0], *senders[1:]) for _ in range(2)]
        prefix = settings.topic_prefix
        acked: dict[str, set[str]] = {s.user_id: set() for s in senders}
        killed = asyncio.Event()

        async def send_all(index: int) -> None:
            sender = senders[index]
            async with mqtt_session(settings, sender, max_inflight_messages=50) as client:
                await client.subscribe(f"{prefix}/u/{sender.user_id}", qos=1)
                for i in range(PER_SENDER):
                    await client.publish(
                        f"{prefix}/up/{sender.user_id}",
                        send_command(threads[i % 2], f"{index}-{i}", f"{index}-{i}"), qos=1)
                async with asyncio.timeout(120):
                    async for message in client.messages:
                        event = received_event(message.payload)
                        assert event["type"] == "ack", event
                        acked[sender.user_id].add(event["req"])
                        if sum(map(len, acked.values())) >= SENDERS * PER_SENDER // 2:
                            killed.set()
                        if len(acked[sender.user_id]) == PER_SENDER:
                            return

        async def kill_and_restart() -> None:
            await killed.wait()
            workers[2].process.send_signal(signal.SIGKILL)
            await workers[2].process.wait()
            workers[2] = await start_mqim(settings, tmp_path / "bridge-2.log", "bridge",
                                          "--worker", "2")
            await wait_for_log(workers[2], "bridge consuming", count=2)

        await asyncio.gather(kill_and_restart(), *(send_all(i) for i in range(SENDERS)))
        assert workers[2].log_path.read_text().count("bridge consuming") == 2  # it did restart

        bodies: list[str] = []
        for thread_id in threads:
            entries = await whole_timeline(http, senders[0], thread_id)
            bodies += [str(e["body"]) for e in entries if e["type"] == "message"]
        assert len(bodies) == SENDERS * PER_SENDER
        sent = [f"{s}-{i}" for s in range(SENDERS) for i in range(PER_SENDER)]
        assert sorted(bodies) == sorted(sent)

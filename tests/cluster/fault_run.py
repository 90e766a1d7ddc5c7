"""The cluster fault run (issue 14): 5 senders on different nodes send a burst of 5,000 messages;
mid-burst one RabbitMQ node and one of the two bridge workers are killed with SIGKILL. Senders
whose node died reconnect to a surviving one and resend what was not acked (same client_msg_id).
Prints the figures: sent, stored, duplicated, lost, seqs gapless, reconnect times, the uplink
queue's depth while it recovered.

    .venv/bin/python -m tests.cluster.fault_run [--messages 5000] [--kill-node 2]

Not a pytest module (it takes minutes); the figures go to docs/deploy-cluster.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import secrets
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

import aio_pika
import aiomqtt
from aio_pika.exceptions import AMQPError

from tests.cluster.stack import ClusterStack, cluster_stack
from tests.helpers import Account, create_group, register, send_command, whole_timeline

SENDERS = 5
WINDOW = 50  # QoS 1 publishes in flight per sender
STALL_SECONDS = 15


class Sender:
    def __init__(self, stack: ClusterStack, account: Account, thread_id: str, count: int,
                 node: int, *, stall: float = STALL_SECONDS) -> None:
        self.stack, self.account, self.thread_id = stack, account, thread_id
        self.node, self.stall = node, stall
        self.commands = {f"{account.user_id}-{i}": send_command(
            thread_id, f"m{i}", f"{i}", req=f"{account.user_id}-{i}") for i in range(count)}
        self.acked: set[str] = set()
        self.reconnects: list[float] = []

    async def run(self, alive: list[bool]) -> None:
        lost_at: float | None = None
        prefix = self.stack.settings.topic_prefix
        while len(self.acked) < len(self.commands):
            where = self.stack.mqtt(self.node)
            try:
                async with aiomqtt.Client(
                    where.host, where.port, username=self.account.mqtt["username"],
                    password=self.account.mqtt["password"],
                    # A fresh client id per connection: a client id whose subscription queue
                    # lived on the dead node cannot be used again until that node is back
                    # (RabbitMQ 3.10: "home node of durable queue ... is down").
                    identifier=f"{self.account.user_id}:{secrets.token_hex(4)}",
                    clean_session=True, timeout=30,
                ) as conn:
                    if lost_at is not None:
                        self.reconnects.append(time.monotonic() - lost_at)
                        lost_at = None
                    await conn.subscribe(f"{prefix}/u/{self.account.user_id}", qos=1)
                    # A stall ends the connection even while PUBACKs are still awaited: RabbitMQ
                    # may hold those for ~30 s after a node died (its quorum queue re-sends).
                    reader = asyncio.create_task(self._read_acks(conn))
                    writer = asyncio.create_task(
                        self._publish_unacked(conn, f"{prefix}/up/{self.account.user_id}"))
                    try:
                        await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_EXCEPTION)
                        if reader.done():
                            reader.result()  # raises the stall, if that is what ended it
                        else:
                            writer.result()
                            await reader
                    finally:
                        reader.cancel()
                        writer.cancel()
            except aiomqtt.MqttError:
                if lost_at is None:
                    lost_at = time.monotonic()
                if not alive[self.node]:
                    self.node = next(i for i, up in enumerate(alive) if up)
                await asyncio.sleep(0.2)

    async def _publish_unacked(self, conn: aiomqtt.Client, topic: str) -> None:
        window = asyncio.Semaphore(WINDOW)

        async def send(command: bytes) -> None:
            async with window:
                await conn.publish(topic, command, qos=1)

        await asyncio.gather(*(send(c) for r, c in self.commands.items() if r not in self.acked))

    async def _read_acks(self, conn: aiomqtt.Client) -> None:
        messages = aiter(conn.messages)
        while len(self.acked) < len(self.commands):
            try:
                async with asyncio.timeout(self.stall):
                    message = await anext(messages)
            except TimeoutError:  # stalled: reconnect and resend what is not acked
                raise aiomqtt.MqttError(f"no ack for {self.stall} s") from None
            event = json.loads(message.payload)
            if event.get("type") == "ack" and event.get("req") in self.commands:
                self.acked.add(event["req"])


async def _depth(stack: ClusterStack, alive: list[bool], samples: list[tuple[float, int]],
                 t0: float, stop: asyncio.Event) -> None:
    """The uplink queue's ready messages every 0.5 s, from a passive declare on a live node
    (live, unlike the management API's figures, which lag by the 5 s statistics interval)."""
    user, password = stack.cluster.admin
    while not stop.is_set():
        node = stack.cluster.nodes[next(i for i, up in enumerate(alive) if up)]
        try:
            connection = await aio_pika.connect(
                f"amqp://{user}:{password}@127.0.0.1:{node.amqp_port}/", timeout=3)
            async with connection:
                channel = await connection.channel()
                while not stop.is_set() and alive[stack.cluster.nodes.index(node)]:
                    queue = await channel.declare_queue("mqim-uplinks", passive=True)
                    count = queue.declaration_result.message_count or 0
                    samples.append((round(time.monotonic() - t0, 1), count))
                    await asyncio.sleep(0.5)
        except (TimeoutError, AMQPError, OSError):
            await asyncio.sleep(0.2)


async def fault_run(messages: int, kill_node: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        async with cluster_stack(Path(tmp), bridges=2) as stack:
            accounts = [await register(stack.http) for _ in range(SENDERS)]
            reader = await register(stack.http)
            thread_id = await create_group(stack.http, accounts[0], *accounts[1:], reader)
            per = messages // SENDERS
            senders = [Sender(stack, a, thread_id, per, i % 3) for i, a in enumerate(accounts)]
            alive = [True, True, True]
            samples: list[tuple[float, int]] = []
            stop = asyncio.Event()
            t0 = time.monotonic()
            poller = asyncio.create_task(_depth(stack, alive, samples, t0, stop))
            tasks = [asyncio.create_task(s.run(alive)) for s in senders]
            while sum(len(s.acked) for s in senders) < messages // 5:  # noqa: ASYNC110
                await asyncio.sleep(0.05)  # polling the senders' counters
            killed_at = round(time.monotonic() - t0, 2)
            alive[kill_node] = False
            await stack.cluster.kill_node(kill_node)
            stack.processes["bridge2"].send_signal(signal.SIGKILL)
            await asyncio.wait_for(asyncio.gather(*tasks), 600)
            elapsed = round(time.monotonic() - t0, 1)
            stop.set()
            await poller
            entries = await whole_timeline(stack.http, reader, thread_id)
            texts = [e for e in entries if e.get("sender_id") in {a.user_id for a in accounts}]
            keys = [(e["sender_id"], e["body"]) for e in texts]
            expected = {(a.user_id, str(i)) for a in accounts for i in range(per)}
            return {
                "sent": SENDERS * per, "stored": len(texts),
                "duplicated": len(keys) - len(set(keys)), "lost": len(expected - set(keys)),
                "seqs_gapless": True,  # whole_timeline asserts 1..n
                "killed_at_s": killed_at, "all_acked_after_s": elapsed,
                "reconnect_s": [round(r, 2) for s in senders for r in s.reconnects],
                "uplink_queue_ready_max": max((d for _, d in samples), default=0),
                "uplink_queue_ready_samples": samples,
                "stack_start_s": round(stack.timings["stack_start"], 1),
                "service_failover_log": failover_lines(stack),
            }


def failover_lines(stack: ClusterStack) -> list[str]:
    """What the API and the surviving worker logged about moving to another node."""
    marks = ("lost AMQP", "bridge consuming", "publisher lost", "unreachable", "no AMQP node",
             "ERROR", "WARNING")
    lines = []
    for name in ("api", "bridge"):
        for line in (stack.workdir / f"{name}.log").read_text(errors="replace").splitlines():
            if any(mark in line for mark in marks):
                lines.append(f"{name}: {line[:240]}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--kill-node", type=int, default=2)
    args = parser.parse_args()
    logging.getLogger("mqtt").setLevel(logging.ERROR)
    print(json.dumps(asyncio.run(fault_run(args.messages, args.kill_node))))  # noqa: T201


if __name__ == "__main__":
    main()

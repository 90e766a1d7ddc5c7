"""No RabbitMQ node is a point of failure (issue 14): kill -9 node 0, which every service setting
names first (MQIM_BROKER_URL, bridge 1's AMQP URL, the management URL), and bridge worker 2,
during a burst from senders on all three nodes. The lean CI form of tests/cluster/fault_run.py,
on the package's stack; node 0 and the worker are restarted after, under the clients."""

from __future__ import annotations

import asyncio
import json
import secrets
import signal
import time

import aiomqtt
import pytest

from tests.cluster.fault_run import Sender, failover_lines
from tests.cluster.rabbitmq import rabbitmq_available, start_node, wait_cluster
from tests.cluster.stack import ClusterStack, start_bridge, wait_bridge_consuming
from tests.helpers import Account, create_group, register, whole_timeline

pytestmark = pytest.mark.skipif(not rabbitmq_available(), reason="rabbitmq-server not installed")

SENDERS, PER_SENDER = 3, 170  # 510 messages
KILLED = 0
STALL = 3.0


class Reader:
    """A member on the node that dies: follows the thread live, and after every (re)connect
    catches up over HTTP, as the SDK does. Seqs seen either way land in `seen`."""

    def __init__(self, stack: ClusterStack, account: Account, thread_id: str) -> None:
        self.stack, self.account, self.thread_id = stack, account, thread_id
        self.seen: set[int] = set()
        self.live: set[int] = set()
        self.reconnects: list[float] = []

    async def run(self, alive: list[bool]) -> None:
        node, lost_at = KILLED, None
        topic = f"{self.stack.settings.topic_prefix}/t/{self.thread_id}"
        while True:
            where = self.stack.mqtt(node)
            try:
                async with aiomqtt.Client(
                    where.host, where.port, username=self.account.mqtt["username"],
                    password=self.account.mqtt["password"], clean_session=True, timeout=10,
                    identifier=f"{self.account.user_id}:{secrets.token_hex(4)}",
                ) as conn:
                    await conn.subscribe(topic, qos=1)
                    if lost_at is not None:
                        self.reconnects.append(time.monotonic() - lost_at)
                    entries = await whole_timeline(self.stack.http, self.account, self.thread_id)
                    self.seen |= {e["seq"] for e in entries}
                    async for message in conn.messages:
                        event = json.loads(message.payload)
                        if event.get("type") == "message":
                            self.seen.add(event["seq"])
                            self.live.add(event["seq"])
            except aiomqtt.MqttError:
                lost_at = lost_at or time.monotonic()
                if not alive[node]:
                    node = next(i for i, up in enumerate(alive) if up)
                await asyncio.sleep(0.2)


async def test_kill_9_of_node_0_and_a_worker_mid_burst_loses_and_duplicates_nothing(
    stack: ClusterStack,
) -> None:
    senders_accounts = [await register(stack.http) for _ in range(SENDERS)]
    reader_account = await register(stack.http)
    thread_id = await create_group(stack.http, *senders_accounts, reader_account)
    # Senders on nodes 0, 1, 2: the one on node 0 must move, and resend what was not acked.
    # An ack published while its sender was between connections is lost (its new client id has
    # no queue yet): the sender resends after `stall` seconds without one, as an app would.
    senders = [Sender(stack, a, thread_id, PER_SENDER, i, stall=STALL)
               for i, a in enumerate(senders_accounts)]
    reader = Reader(stack, reader_account, thread_id)
    alive = [True, True, True]
    following = asyncio.create_task(reader.run(alive))
    tasks = [asyncio.create_task(s.run(alive)) for s in senders]
    try:
        async with asyncio.timeout(20):
            while sum(len(s.acked) for s in senders) < SENDERS * PER_SENDER // 5:  # noqa: ASYNC110
                await asyncio.sleep(0.02)  # polling the senders' counters
        alive[KILLED] = False
        killed_at = time.monotonic()
        await stack.cluster.kill_node(KILLED)
        stack.processes["bridge2"].send_signal(signal.SIGKILL)
        await asyncio.wait_for(asyncio.gather(*tasks), 60)
        acked_after = time.monotonic() - killed_at
        entries = await whole_timeline(stack.http, reader_account, thread_id)  # gapless 1..n
        ids = {a.user_id for a in senders_accounts}
        keys = [(e["sender_id"], e["body"]) for e in entries if e.get("sender_id") in ids]
        assert len(keys) == SENDERS * PER_SENDER
        assert set(keys) == {(a.user_id, str(i)) for a in senders_accounts
                             for i in range(PER_SENDER)}  # none lost, none stored twice
        # The member whose node died reconnected elsewhere and caught up on every seq.
        async with asyncio.timeout(15):
            while reader.seen != {e["seq"] for e in entries}:  # noqa: ASYNC110
                await asyncio.sleep(0.05)  # polling the reader's set
        assert reader.reconnects
        assert senders[KILLED].reconnects
        caught_up_after = time.monotonic() - killed_at
        print(f"fault: reconnects reader {reader.reconnects} sender {senders[KILLED].reconnects}, "  # noqa: T201
              f"{len(reader.live)} of {len(entries)} seqs live; all acked {acked_after:.1f} s and "
              f"caught up {caught_up_after:.1f} s after the kill", *failover_lines(stack), sep="\n")
    finally:
        for task in (following, *tasks):
            task.cancel()
        # Back to three nodes and two workers for whatever runs next on this stack.
        restart = time.monotonic()
        await start_node(stack.cluster, stack.cluster.nodes[KILLED])
        await wait_cluster(stack.cluster, 3)
        await start_bridge(stack, "bridge2")
        await wait_bridge_consuming(stack)
        print(f"fault: node {KILLED} and bridge2 restarted in {time.monotonic() - restart:.1f} s")  # noqa: T201

"""The SDK against raw MQTT: what mqim_client costs a sender, measured beside the raw protocol.

One user sends N messages to a group thread of two; the other member receives them. Both sides
are real clients on the stack the bench started, and every send is awaited until confirmed, with
at most IN_FLIGHT (100) sends unconfirmed at a time:

- **raw protocol:** aiomqtt clients speaking mqim's protocol as bench_common.ChatSender does
  (QoS 1 `send` with a `req`, confirmed by its `ack` event; the receiver subscribed to the
  thread), run right before and right after the SDK (and pooled), as the bench brackets every
  measurement with its baseline: one run alone drifts on a shared machine;
- **SDK:** two `mqim_client.Client`s logged in over HTTP, `connect()`ed (thread list, subscribe,
  sync, presence), the sender awaiting `send()`, the receiver reading `events()`.

Reported for each: msgs/s (send to last confirmation), p50/p99 send -> confirmation, p50/p99 send
-> received by the other client, and the SDK's figures over the raw ones. The receiver must get
every message exactly once; a gap, a duplicate or a stray fails the run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import aiomqtt
import httpx
from bench_common import (
    ChatSender,
    Figures,
    ProcessMeter,
    Progress,
    accounts,
    frozen_heap,
    group_of,
    percentile,
    run_paced,
    stamp_body,
    user_client,
)

from mqim_client import Client, ErrorEvent, MessageEvent
from tests.helpers import Account
from tests.stacks import Stack

SETTLE_S = 0.5  # after the last expected message, how long a late duplicate gets to show up
RAW, SDK = "group of 2, raw protocol", "group of 2, mqim_client SDK"


def ms_since(start_ns: int) -> float:
    return (time.perf_counter_ns() - start_ns) / 1e6


class Tally:
    """What a receiver got, by message index (the body is `stamp_body(i)`: ns:i:padding)."""

    def __init__(self, label: str, expected: int) -> None:
        self.label, self.expected = label, expected
        self.counts: Counter[int] = Counter()
        self.latencies: list[float] = []
        self.complete = asyncio.Event()
        self.progress = Progress(f"{label} received", expected)

    def add(self, body: str) -> None:
        stamp, index, _ = body.split(":", 2)
        if not self.counts[int(index)]:  # the first copy's latency; copies are counted below
            self.latencies.append(ms_since(int(stamp)))
            self.progress.add()
        self.counts[int(index)] += 1
        if len(self.counts) >= self.expected:
            self.complete.set()

    def check(self) -> None:
        """Every message exactly once, or the run fails."""
        missing = sorted(set(range(self.expected)) - set(self.counts))
        twice = {i: n for i, n in self.counts.items() if n > 1}
        stray = sorted(set(self.counts) - set(range(self.expected)))
        if missing or twice or stray:
            raise RuntimeError(f"{self.label}: the receiver did not get every message once: "
                               f"missing {missing[:20]}, repeated {dict(list(twice.items())[:20])}"
                               f", stray {stray[:20]}")


@dataclass
class Sample:
    """One measured run."""

    messages: int
    confirmed_s: float  # first send -> last confirmation
    received_s: float  # first send -> last message received
    confirm_ms: list[float]
    receive_ms: list[float]
    meter: Figures  # CPU and RSS of the server processes over the run


async def timed(send: Callable[[], Awaitable[object]], confirm_ms: list[float]) -> None:
    start = time.perf_counter_ns()
    await send()
    confirm_ms.append(ms_since(start))


async def measure(stack: Stack, label: str, n: int, send: Callable[[int], Awaitable[object]],
                  background: Sequence[Coroutine[Any, Any, None]], tally: Tally) -> Sample:
    """Send 0..n-1 through `send` (each awaited until confirmed, IN_FLIGHT at a time) while
    `background` (the receiver, the sender's listener) runs; wait for every message and a
    settle time, then check the tally."""
    confirm_ms: list[float] = []
    with frozen_heap():  # the load generator's GC out of the figures
        meter, usage = ProcessMeter(stack), Figures(label, "")
        start = time.monotonic()
        async with asyncio.timeout(300), asyncio.TaskGroup() as group:
            tasks = [group.create_task(work) for work in background]
            await run_paced([partial(timed, partial(send, i), confirm_ms) for i in range(n)], 0,
                            Progress(f"{label} confirmed", n))
            confirmed = time.monotonic()
            await tally.complete.wait()
            received = time.monotonic()
            await asyncio.sleep(SETTLE_S)
            for task in tasks:
                task.cancel()
    meter.stop(usage)
    tally.check()
    return Sample(n, confirmed - start, received - start, confirm_ms, tally.latencies, usage)


async def raw_protocol(stack: Stack, http: httpx.AsyncClient, pair: Sequence[Account],
                       n: int) -> Sample:
    """The baseline: the bench's own 1:1 path (ChatSender, `req` acks) on a fresh group."""
    sender, member = pair
    thread_id = await group_of(http, sender, [member])
    prefix = stack.settings.topic_prefix
    tally = Tally("raw protocol", n)
    async with user_client(stack, sender) as out, user_client(stack, member) as into:
        await into.subscribe(f"{prefix}/t/{thread_id}", qos=1)
        chat = ChatSender(out, sender, thread_id, prefix, "req")
        await chat.subscribe()

        async def receiver(client: aiomqtt.Client) -> None:
            async for message in client.messages:
                event = json.loads(bytes(message.payload))
                if event.get("type") == "message" and event.get("thread_id") == thread_id:
                    tally.add(str(event["body"]))

        return await measure(stack, "raw protocol", n, chat.send,
                             [receiver(into), chat.listen()], tally)


async def sdk_clients(stack: Stack, http: httpx.AsyncClient, pair: Sequence[Account],
                      n: int, figures: Figures) -> Sample:
    """The same traffic through mqim_client: login over HTTP, connect(), send(), events()."""
    sender, member = pair
    thread_id = await group_of(http, sender, [member])
    api, s = f"http://{stack.settings.http}", stack.settings
    broker = f"mqtt://{s.mqtt.host}:{s.mqtt.port}"
    tally = Tally("SDK", n)
    async with Client(api, broker=broker) as alice, Client(api, broker=broker) as bob:
        for client, account in ((alice, sender), (bob, member)):
            await client.login(account.user_id, account.password)
            await client.connect()

        async def events(client: Client, counted: Tally | None) -> None:
            async for event in client.events():  # the sender's too: its queue is unbounded
                if isinstance(event, ErrorEvent):
                    raise RuntimeError(f"SDK client got an error event: {event}")
                if (counted is not None and isinstance(event, MessageEvent)
                        and event.thread_id == thread_id):
                    counted.add(event.body or "")

        async def send(i: int) -> None:
            await alice.send(thread_id, stamp_body(i))  # stamped when the send starts

        sample = await measure(stack, "SDK", n, send, [events(bob, tally), events(alice, None)],
                               tally)
        figures.extra.update(sdk_send_retries=alice.stats.retries,
                             sdk_confirmed_by_echo=alice.stats.confirmed_by_echo,
                             sdk_receiver_caught_up=bob.stats.caught_up)
    return sample


def report(figures: Figures, samples: Sequence[Sample]) -> Figures:
    """Pool the samples (two for the bracketed baseline) into the bench's figures."""
    confirm = [ms for s in samples for ms in s.confirm_ms]
    latency = [ms for s in samples for ms in s.receive_ms]
    figures.messages = sum(s.messages for s in samples)
    figures.seconds = sum(s.received_s for s in samples)
    figures.persisted_per_s = figures.messages / sum(s.confirmed_s for s in samples)
    figures.delivered_per_s = figures.messages / figures.seconds
    figures.p50_ms, figures.p95_ms = percentile(latency, 50), percentile(latency, 95)
    figures.p99_ms = percentile(latency, 99)
    figures.extra.update(confirm_p50_ms=percentile(confirm, 50),
                         confirm_p99_ms=percentile(confirm, 99))
    figures.server_cpu_s = sum(s.meter.server_cpu_s for s in samples)
    figures.broker_cpu_s = sum(s.meter.broker_cpu_s for s in samples)
    figures.server_rss_mb = samples[-1].meter.server_rss_mb
    figures.broker_rss_mb = samples[-1].meter.broker_rss_mb
    return figures


async def scenario_sdk(stack: Stack, http: httpx.AsyncClient, args: argparse.Namespace
                       ) -> list[Figures]:
    """Raw protocol, SDK, raw protocol again, on the same stack; two rows. The SDK row's
    `ratio` is its msgs/s over the raw protocol's; its extras hold the latency ratios."""
    n = args.sdk_messages
    users = await accounts(http, 4)  # the SDK's logins end the registered sessions: own pair
    before = await raw_protocol(stack, http, users[:2], n)
    sdk = Figures(SDK, args.mode)
    report(sdk, [await sdk_clients(stack, http, users[2:], n, sdk)])
    after = await raw_protocol(stack, http, users[:2], n)
    raw = report(Figures(RAW, args.mode), [before, after])
    raw.extra.update(raw_before_per_s=before.messages / before.confirmed_s,
                     raw_after_per_s=after.messages / after.confirmed_s)
    sdk.ratio = sdk.persisted_per_s / raw.persisted_per_s
    for name in ("confirm_p50_ms", "confirm_p99_ms"):
        sdk.extra[name.replace("_ms", "_vs_raw")] = sdk.extra[name] / raw.extra[name]
    sdk.extra["receive_p50_vs_raw"] = sdk.p50_ms / raw.p50_ms
    sdk.extra["receive_p99_vs_raw"] = sdk.p99_ms / raw.p99_ms
    return [raw, sdk]


def sdk_table(results: Sequence[Figures]) -> str:
    """The SDK rows side by side with their baseline ("" when the scenario did not run)."""
    rows = [f for f in results if f.scenario in (RAW, SDK)]
    if not rows:
        return ""
    lines = ["| mode | client | msgs | msgs/s | confirm p50 ms | confirm p99 ms | "
             "receive p50 ms | receive p99 ms | msgs/s vs raw | mqim CPU s |",
             "|" + "---|" * 10]
    for f in rows:
        lines.append(
            f"| {f.mode} | {f.scenario.removeprefix('group of 2, ')} | {f.messages:,} | "
            f"{f.persisted_per_s:,.0f} | {f.extra['confirm_p50_ms']:.1f} | "
            f"{f.extra['confirm_p99_ms']:.1f} | {f.p50_ms:.1f} | {f.p99_ms:.1f} | "
            f"{f.ratio if f.scenario == SDK else 1:.0%} | {f.server_cpu_s:.1f} |")
    return "\n".join(lines)

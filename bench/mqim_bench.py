"""mqim end-to-end benchmark: the real pipeline beside the raw broker, in one run.

Starts a real stack (the embedded mode, or Mosquitto + PostgreSQL) as processes, exactly as the
tests do (tests/stacks.py), drives real aiomqtt clients, and reports for each scenario:
persisted msg/s (acked sends), delivered msg/s (thread events received by members), end-to-end
latency (publish -> received by a member) and the CPU and RSS of the server processes. In the
same run, on the same broker, with the same client library, it measures the raw broker
pass-through (no bridge, no database) and prints the ratio.

    .venv/bin/python bench/mqim_bench.py --mode mosquitto --scenario all
    .venv/bin/python bench/mqim_bench.py --quick          # small numbers, both modes (CI test)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import random
import resource
import secrets
import socket
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import aiomqtt
import asyncpg
import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from broker.link.client import derive_service_password  # after the path fix above
from tests.helpers import Account, register
from tests.stacks import Stack, running_stack

PAYLOAD_PAD = 120  # bytes of body padding: ~200-byte uplinks, as in the research figures
IN_FLIGHT = 100  # unconfirmed sends per client (PUBACK for raw, the ack event for mqim)


# --- measurement helpers -----------------------------------------------------------------


@dataclass
class Figures:
    scenario: str
    mode: str
    messages: int = 0
    seconds: float = 0.0
    persisted_per_s: float = 0.0
    delivered_per_s: float = 0.0
    raw_per_s: float = 0.0
    ratio: float = 0.0
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    p99_ms: float = 0.0
    server_cpu_s: float = 0.0
    broker_cpu_s: float = 0.0
    server_rss_mb: float = 0.0
    broker_rss_mb: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def percentile(values: Sequence[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


class Progress:
    """A one-line progress bar on stderr."""

    def __init__(self, label: str, total: int) -> None:
        self.label, self.total, self.done, self._last = label, total, 0, 0.0

    def add(self, n: int = 1) -> None:
        self.done += n
        if not self.total:
            return
        now = time.monotonic()
        if now - self._last > 0.2 or self.done >= self.total:
            self._last = now
            filled = int(30 * self.done / max(self.total, 1))
            sys.stderr.write(f"\r  {self.label:<28} [{'#' * filled}{'.' * (30 - filled)}] "
                             f"{self.done}/{self.total}")
            if self.done >= self.total:
                sys.stderr.write("\n")
            sys.stderr.flush()


class ProcessMeter:
    """CPU seconds used and RSS of the server processes (mqim, and Mosquitto if any)."""

    def __init__(self, stack: Stack) -> None:
        self.server = psutil.Process(stack.process.pid)
        conf = str(stack.log_path.parent / "mosquitto.conf")
        self.broker = next((p for p in psutil.process_iter(["cmdline"])
                            if conf in " ".join(p.info["cmdline"] or [])), None)
        self._start = self._cpu()

    def _cpu(self) -> tuple[float, float]:
        def used(p: psutil.Process | None) -> float:
            if p is None:
                return 0.0
            t = p.cpu_times()
            return float(t.user + t.system)
        return used(self.server), used(self.broker)

    def stop(self, figures: Figures) -> None:
        server, broker = self._cpu()
        figures.server_cpu_s = server - self._start[0]
        figures.broker_cpu_s = broker - self._start[1]
        figures.server_rss_mb = self.server.memory_info().rss / 2**20
        if self.broker is not None:
            figures.broker_rss_mb = self.broker.memory_info().rss / 2**20


# Every bench client, raw or chat, turns Nagle off, as mqim's own connections and Mosquitto
# (set_tcp_nodelay) do: otherwise a small publish can wait for a delayed ACK (up to 40 ms).
NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


def user_client(stack: Stack, account: Account, **kwargs: Any) -> aiomqtt.Client:
    s = stack.settings
    return aiomqtt.Client(s.mqtt.host, s.mqtt.port, username=account.user_id,
                          password=account.token, identifier=account.mqtt["client_id"],
                          max_inflight_messages=IN_FLIGHT, socket_options=NODELAY, **kwargs)


def service_client(stack: Stack, name: str) -> aiomqtt.Client:
    s = stack.settings
    return aiomqtt.Client(s.mqtt.host, s.mqtt.port, username=s.bridge_username,
                          password=derive_service_password(s.jwt_secret, s.bridge_username),
                          identifier=f"{s.bridge_username}:bench-{name}-{secrets.token_hex(3)}",
                          max_inflight_messages=IN_FLIGHT, socket_options=NODELAY)


async def run_paced(sends: Sequence[Callable[[], Awaitable[None]]], rate: float,
                    progress: Progress) -> None:
    """Start each send at `rate` per second (0: as fast as the window allows), with at most
    IN_FLIGHT unconfirmed; a send's awaitable completes when it is confirmed."""
    window = asyncio.Semaphore(IN_FLIGHT)
    start = time.monotonic()

    async def one(send: Callable[[], Awaitable[None]]) -> None:
        try:
            await send()
        finally:
            window.release()
            progress.add()

    tasks = []
    for i, send in enumerate(sends):
        if rate > 0:
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        await window.acquire()
        tasks.append(asyncio.ensure_future(one(send)))
    await asyncio.gather(*tasks)


async def publish(client: aiomqtt.Client, topic: str, make: Callable[[], bytes]) -> None:
    """A raw QoS 1 publish, confirmed by the broker's PUBACK. The payload is made at publish
    time, so its timestamp measures from the publish."""
    await client.publish(topic, make(), qos=1)


class ChatSender:
    """A chat client's sending side, built as docs/mqtt.md tells clients to: it is subscribed to
    its thread (it must be, to hear the other side) and its own topic, and a send is confirmed
    when its message comes back on the thread with the sender's `client_msg_id` (`echo`), or
    by the `ack` event its `req` asks for (`req`: one more publish per message for the bridge).
    The broker's PUBACK only means the broker has it. So senders are held to IN_FLIGHT
    unconfirmed sends, as the raw publishers are held to IN_FLIGHT unacked PUBLISHes."""

    def __init__(self, client: aiomqtt.Client, account: Account, thread_id: str, prefix: str,
                 acks: str) -> None:
        self.client, self.user_id, self.thread_id, self.prefix = (
            client, account.user_id, thread_id, prefix)
        self.by_req = acks == "req"
        self._pending: dict[str, asyncio.Future[None]] = {}

    async def subscribe(self) -> None:
        await self.client.subscribe(f"{self.prefix}/u/{self.user_id}", qos=1)
        if not self.by_req:
            await self.client.subscribe(f"{self.prefix}/t/{self.thread_id}", qos=1)

    async def send(self, i: int) -> None:
        key = f"b{i}-{secrets.token_hex(4)}"
        done = self._pending[key] = asyncio.get_running_loop().create_future()
        await self.client.publish(f"{self.prefix}/up/{self.user_id}", send_payload(
            key, self.thread_id, i, req=key if self.by_req else None), qos=1)
        await done

    async def listen(self) -> None:
        """Resolve confirmations until cancelled; an `error` event fails the run (a bench must
        not count refused sends)."""
        async for message in self.client.messages:
            event = json.loads(bytes(message.payload))
            kind = event.get("type")
            if kind == "error":
                raise RuntimeError(f"send refused: {event}")
            if self.by_req and kind == "ack":
                key = event["req"]
            elif not self.by_req and kind == "message" and event["sender_id"] == self.user_id:
                key = event["client_msg_id"]
            else:
                continue
            future = self._pending.pop(key, None)
            if future is not None:
                future.set_result(None)


def stamp_body(i: int) -> str:
    return f"{time.perf_counter_ns()}:{i}:" + "x" * PAYLOAD_PAD


def raw_payload(i: int) -> bytes:
    return stamp_body(i).encode()


def send_payload(client_msg_id: str, thread_id: str, i: int, *, req: str | None) -> bytes:
    command = {"op": "send", "thread_id": thread_id, "client_msg_id": client_msg_id,
               "body": stamp_body(i)}
    if req is not None:
        command["req"] = req
    return json.dumps(command).encode()


async def receive(client: aiomqtt.Client, expected: int, progress: Progress | None,
                  latencies: list[float] | None, kind: str | None = "message") -> None:
    """Count messages (thread events of `kind`, or any payload when kind is None) until
    `expected`, recording latency from the timestamp at the start of the body."""
    got = 0
    async for message in client.messages:
        payload = bytes(message.payload)
        if kind is not None:
            event = json.loads(payload)
            if event.get("type") != kind:
                continue
            body = str(event.get("body", ""))
        else:
            body = payload.decode()
        if latencies is not None:
            latencies.append((time.perf_counter_ns() - int(body.split(":", 1)[0])) / 1e6)
        got += 1
        if progress is not None:
            progress.add()
        if got >= expected:
            return


# --- the raw broker baseline ---------------------------------------------------------------


async def raw_passthrough(stack: Stack, pairs: int, per_pair: int, fanout: int = 1) -> float:
    """Deliveries/s through the broker alone: `pairs` publishers, each to its own topic with
    `fanout` subscribers, as the service account (no bridge, no database)."""
    progress = Progress(f"raw broker x{pairs}x{fanout}", pairs * per_pair * fanout)
    async with asyncio.TaskGroup() as group:
        subs = [service_client(stack, f"rs{i}") for i in range(pairs * fanout)]
        pubs = [service_client(stack, f"rp{i}") for i in range(pairs)]
        for c in (*subs, *pubs):
            await c.__aenter__()
        try:
            for i, sub in enumerate(subs):
                await sub.subscribe(f"bench/raw/{i // fanout}", qos=1)
            start = time.monotonic()
            receivers = [group.create_task(receive(s, per_pair, progress, None, kind=None))
                         for s in subs]
            for p, pub in enumerate(pubs):
                sends = [partial(publish, pub, f"bench/raw/{p}", partial(raw_payload, i))
                         for i in range(per_pair)]
                group.create_task(run_paced(sends, 0, Progress("", 0)))
            await asyncio.gather(*receivers)
            return pairs * per_pair * fanout / (time.monotonic() - start)
        finally:
            for c in (*subs, *pubs):
                await c.__aexit__(None, None, None)


async def bracketed(raw: Callable[[], Awaitable[float]], figures: Figures,
                    measured: Awaitable[None]) -> None:
    """Run the raw baseline right before and right after the measured pipeline and keep their
    mean: on a shared 2-core machine one raw run alone drifts by 20% or more between runs."""
    before = await raw()
    await measured
    after = await raw()
    figures.raw_per_s = (before + after) / 2
    figures.extra["raw_before_per_s"], figures.extra["raw_after_per_s"] = before, after


# --- scenarios -------------------------------------------------------------------------------


async def accounts(http: httpx.AsyncClient, n: int) -> list[Account]:
    progress = Progress("registering users", n)
    window = asyncio.Semaphore(20)

    async def one() -> Account:
        async with window:
            account = await register(http)
            progress.add()
            return account

    return list(await asyncio.gather(*(one() for _ in range(n))))


async def group_of(http: httpx.AsyncClient, owner: Account, members: Sequence[Account]) -> str:
    ids = [m.user_id for m in members]
    response = await http.post("/api/threads", headers=owner.auth,
                               json={"type": "group", "name": "bench", "user_ids": ids[:4999]})
    thread_id: str = response.json()["data"]["thread_id"]
    return thread_id


async def pipeline(stack: Stack, senders: Sequence[Account], threads: Sequence[str],
                   receivers: Sequence[tuple[Account, str]], per_sender: int, rate: float,
                   figures: Figures, *, acks: str) -> None:
    """senders[i] sends `per_sender` messages to threads[i]; each (account, thread) in
    `receivers` is a member subscribed to that thread. Fills persisted/delivered/latency."""
    prefix = stack.settings.topic_prefix
    deliveries = sum(per_sender for _ in receivers)
    total = len(senders) * per_sender
    latencies: list[float] = []
    received = Progress("delivered to members", deliveries)
    sent = Progress("sent and acked", total)
    clients = [user_client(stack, a) for a in senders]
    sub_clients = [user_client(stack, a) for a, _ in receivers]
    for c in (*clients, *sub_clients):
        await c.__aenter__()
    try:
        for c, (_, thread_id) in zip(sub_clients, receivers, strict=True):
            await c.subscribe(f"{prefix}/t/{thread_id}", qos=1)
        chats = [ChatSender(c, a, t, prefix, acks)
                 for c, a, t in zip(clients, senders, threads, strict=True)]
        for chat in chats:
            await chat.subscribe()
        meter = ProcessMeter(stack)
        start = time.monotonic()
        async with asyncio.timeout(600), asyncio.TaskGroup() as group:
            waits = [group.create_task(receive(c, per_sender, received, latencies))
                     for c in sub_clients]
            listeners = [group.create_task(chat.listen()) for chat in chats]
            per_rate = rate / len(senders) if rate else 0
            await asyncio.gather(*(run_paced([partial(chat.send, i) for i in range(per_sender)],
                                             per_rate, sent) for chat in chats))
            acked = time.monotonic()
            await asyncio.gather(*waits)
            for task in listeners:
                task.cancel()
        elapsed = time.monotonic() - start
        meter.stop(figures)
        figures.messages = total
        figures.seconds = elapsed
        figures.persisted_per_s = total / (acked - start)
        figures.delivered_per_s = deliveries / elapsed
        figures.p50_ms = percentile(latencies, 50)
        figures.p95_ms = percentile(latencies, 95)
        figures.p99_ms = percentile(latencies, 99)
    finally:
        for c in (*clients, *sub_clients):
            await c.__aexit__(None, None, None)


async def scenario_direct(stack: Stack, http: httpx.AsyncClient, args: argparse.Namespace
                          ) -> Figures:
    pairs, per = args.pairs, args.messages // args.pairs
    figures = Figures("1:1 chats, max rate" if not args.rate else f"1:1 chats, {args.rate}/s",
                      args.mode)
    users = await accounts(http, 2 * pairs)
    threads = []
    for i in range(pairs):
        response = await http.post("/api/threads", headers=users[2 * i].auth,
                                   json={"type": "direct", "user_ids": [users[2 * i + 1].user_id]})
        threads.append(response.json()["data"]["thread_id"])
    raw = partial(raw_passthrough, stack, pairs, per)
    await bracketed(raw, figures, pipeline(
        stack, users[0::2], threads, list(zip(users[1::2], threads, strict=True)), per,
        args.rate, figures, acks=args.acks))
    figures.ratio = figures.delivered_per_s / figures.raw_per_s
    return figures


async def scenario_groups(stack: Stack, http: httpx.AsyncClient, args: argparse.Namespace
                          ) -> Figures:
    groups, size = args.groups, 10
    per = max(1, args.messages // (groups * size))
    figures = Figures(f"{groups} groups of {size}", args.mode)
    users = await accounts(http, groups * size)
    threads, receivers = [], []
    for g in range(groups):
        members = users[g * size:(g + 1) * size]
        thread_id = await group_of(http, members[0], members[1:])
        threads.append(thread_id)
        receivers += [(m, thread_id) for m in members[1:]]
    raw = partial(raw_passthrough, stack, groups, per, fanout=size - 1)
    await bracketed(raw, figures, pipeline(stack, users[0::size], threads, receivers, per,
                                           args.rate, figures, acks=args.acks))
    figures.ratio = figures.delivered_per_s / figures.raw_per_s
    return figures


async def scenario_fanout(stack: Stack, http: httpx.AsyncClient, args: argparse.Namespace
                          ) -> Figures:
    size, per = args.fanout, args.fanout_messages
    figures = Figures(f"one group of {size}", args.mode)
    users = await accounts(http, size)
    thread_id = await group_of(http, users[0], users[1:])
    raw = partial(raw_passthrough, stack, 1, per, fanout=size - 1)
    await bracketed(raw, figures, pipeline(stack, users[:1], [thread_id],
                                           [(u, thread_id) for u in users[1:]], per, 0, figures,
                                           acks=args.acks))
    figures.ratio = figures.delivered_per_s / figures.raw_per_s
    return figures


async def seed_history(stack: Stack, thread_id: str, sender: str, count: int) -> None:
    """Append `count` messages to a thread straight into the database (fast), as if sent."""
    progress = Progress(f"seeding {count:,} messages", count)
    url = stack.settings.db_url
    now = time.time()
    chunk = 50_000
    if url.startswith("sqlite://"):
        db = sqlite3.connect(url.removeprefix("sqlite://").split("?", 1)[0], timeout=60)
        (last,) = db.execute("SELECT last_seq FROM thread WHERE id=?", (thread_id,)).fetchone()
        for start in range(0, count, chunk):
            rows = [(f"m{secrets.token_hex(10)}", thread_id, last + i + 1, "message", sender,
                     None, "text", f"history {i}", None, "[]", "[]", None, now)
                    for i in range(start, min(start + chunk, count))]
            db.executemany("INSERT INTO message (id, thread_id, seq, kind, sender_id, "
                           "client_msg_id, type, body, reply_to, mentions, attachments, data, "
                           "created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,datetime(?, "
                           "'unixepoch'))", rows)
            db.commit()
            progress.add(len(rows))
        db.execute("UPDATE thread SET last_seq=? WHERE id=?", (last + count, thread_id))
        db.commit()
        db.close()
        return
    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        last = await conn.fetchval("SELECT last_seq FROM thread WHERE id=$1", thread_id)
        from datetime import UTC, datetime

        created = datetime.now(UTC)
        for start in range(0, count, chunk):
            records = [(f"m{secrets.token_hex(10)}", thread_id, last + i + 1, "message", sender,
                        "text", f"history {i}", "[]", "[]", created)
                       for i in range(start, min(start + chunk, count))]
            await conn.copy_records_to_table(
                "message", records=records, columns=["id", "thread_id", "seq", "kind",
                                                     "sender_id", "type", "body", "mentions",
                                                     "attachments", "created_at"])
            progress.add(len(records))
        await conn.execute("UPDATE thread SET last_seq=$1 WHERE id=$2", last + count, thread_id)
    finally:
        await conn.close()


async def scenario_history(stack: Stack, http: httpx.AsyncClient, args: argparse.Namespace
                           ) -> list[Figures]:
    out = []
    reader = (await accounts(http, 1))[0]
    for size in (args.history_small, args.history_large):
        thread_id = await group_of(http, reader, [])
        await seed_history(stack, thread_id, reader.user_id, size)
        figures = Figures(f"history page of 50, thread of {size:,}", args.mode)
        timings = []
        progress = Progress("history reads", args.history_reads)
        meter = ProcessMeter(stack)
        for _ in range(args.history_reads):
            after = random.randrange(0, max(1, size - 50))  # noqa: S311  # not security
            t0 = time.perf_counter()
            response = await http.get(f"/api/threads/{thread_id}/messages", headers=reader.auth,
                                      params={"after_seq": after, "limit": 50})
            timings.append((time.perf_counter() - t0) * 1000)
            if len(response.json()["data"]) != 50:
                raise RuntimeError(f"history read failed: {response.text[:200]}")
            progress.add()
        meter.stop(figures)
        figures.messages = size
        figures.p50_ms, figures.p95_ms = percentile(timings, 50), percentile(timings, 95)
        figures.p99_ms = percentile(timings, 99)
        out.append(figures)
    return out


async def scenario_storm(stack: Stack, http: httpx.AsyncClient, args: argparse.Namespace
                         ) -> Figures:
    n = args.storm
    figures = Figures(f"connection storm, {n} clients", args.mode)
    users = await accounts(http, n)
    clients = [user_client(stack, u, timeout=60) for u in users]
    progress = Progress("connecting", n)
    window = asyncio.Semaphore(200)
    meter = ProcessMeter(stack)

    async def connect(c: aiomqtt.Client) -> None:
        async with window:
            await c.__aenter__()
            progress.add()

    start = time.monotonic()
    await asyncio.gather(*(connect(c) for c in clients))
    elapsed = time.monotonic() - start
    meter.stop(figures)
    figures.extra["connects_per_s"] = n / elapsed
    figures.extra["idle_rss_mb_with_all_connected"] = figures.server_rss_mb
    figures.seconds = elapsed
    for c in clients:
        await c.__aexit__(None, None, None)
    return figures


SCENARIOS: dict[str, Callable[..., Awaitable[Figures | list[Figures]]]] = {
    "direct": scenario_direct, "groups": scenario_groups, "fanout": scenario_fanout,
    "history": scenario_history, "storm": scenario_storm,
}


# --- targets and output ----------------------------------------------------------------------


def verdicts(results: Sequence[Figures]) -> list[tuple[str, str, bool]]:
    """The issue's targets, checked against this run's figures (PASS/FAIL rows)."""
    rows = []
    for f in results:
        if f.scenario.startswith("1:1 chats, max"):
            rows.append((f"{f.mode}: 1:1 throughput >= 50% of raw", f"{f.ratio:.0%}",
                         f.ratio >= 0.5))
        if f.scenario.startswith("1:1 chats, ") and "/s" in f.scenario and f.mode == "mosquitto":
            rows.append((f"{f.mode}: latency p99 <= 50 ms at {f.scenario.split(', ')[1]}",
                         f"{f.p99_ms:.1f} ms", f.p99_ms <= 50))
        if f.scenario.startswith("one group of"):
            rows.append((f"{f.mode}: fan-out >= 70% of raw", f"{f.ratio:.0%}", f.ratio >= 0.7))
        if f.scenario.startswith("history page"):
            rows.append((f"{f.mode}: {f.scenario} p99 <= 20 ms", f"{f.p99_ms:.1f} ms",
                         f.p99_ms <= 20))
        if f.scenario.startswith("connection storm"):
            rate = f.extra["connects_per_s"]
            rows.append((f"{f.mode}: >= 500 authenticated connects/s", f"{rate:.0f}/s",
                         rate >= 500))
            if f.mode == "mosquitto" and "10000" in f.scenario:
                rss = f.extra["idle_rss_mb_with_all_connected"]
                rows.append(("mosquitto: 10,000 idle clients, bridge + API RSS <= 300 MB",
                             f"{rss:.0f} MB", rss <= 300))
    history = [f for f in results if f.scenario.startswith("history page")]
    for mode in {f.mode for f in history}:
        small, large = [f for f in history if f.mode == mode][:2] if len(history) > 1 else (
            None, None)
        if small and large:
            growth = large.p99_ms / max(small.p99_ms, 1e-9)
            rows.append((f"{mode}: history cost flat (large/small p99 <= 2x)", f"{growth:.2f}x",
                         growth <= 2))
    return rows


def table(results: Sequence[Figures]) -> str:
    lines = ["| mode | scenario | msgs | persisted/s | delivered/s | raw/s | ratio | p50 ms | "
             "p95 ms | p99 ms | mqim CPU s | broker CPU s | mqim RSS MB | broker RSS MB |",
             "|" + "---|" * 14]
    for f in results:
        lines.append(
            f"| {f.mode} | {f.scenario} | {f.messages:,} | {f.persisted_per_s:,.0f} | "
            f"{f.delivered_per_s:,.0f} | {f.raw_per_s:,.0f} | "
            f"{f.ratio:.0%} | {f.p50_ms:.1f} | {f.p95_ms:.1f} | {f.p99_ms:.1f} | "
            f"{f.server_cpu_s:.1f} | {f.broker_cpu_s:.1f} | {f.server_rss_mb:.0f} | "
            f"{f.broker_rss_mb:.0f} |")
    for f in results:
        if f.extra:
            lines.append(f"\n{f.mode} {f.scenario}: " + ", ".join(
                f"{k} = {v:,.1f}" for k, v in f.extra.items()))
    return "\n".join(lines)


async def run_mode(mode: str, args: argparse.Namespace) -> list[Figures]:
    results: list[Figures] = []
    if args.workdir:
        (args.workdir / mode).mkdir(parents=True, exist_ok=True)
    with (contextlib.nullcontext(str(args.workdir / mode)) if args.workdir
          else tempfile.TemporaryDirectory(prefix=f"mqim-bench-{mode}-")) as tmp:
        print(f"\n== {mode}: starting the stack", file=sys.stderr)  # noqa: T201
        async with running_stack(mode, Path(tmp)) as stack, httpx.AsyncClient(
            base_url=f"http://{stack.settings.http}", timeout=60) as http:
            args.mode = mode
            for name in args.scenarios:
                print(f"-- {mode}: {name}", file=sys.stderr)  # noqa: T201
                result = await SCENARIOS[name](stack, http, args)
                results += result if isinstance(result, list) else [result]
            if args.rate_check and "direct" in args.scenarios:
                saved, args.rate = args.rate, args.rate_check
                results.append(await scenario_direct(stack, http, args))
                args.rate = saved
    return results


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=("embedded", "mosquitto", "both"), default="both")
    parser.add_argument("--scenario", action="append", choices=(*SCENARIOS, "all"),
                        help="repeatable; default all")
    parser.add_argument("--messages", type=int, default=20_000, help="messages per throughput "
                        "scenario [20000]")
    parser.add_argument("--pairs", type=int, default=4, help="1:1 chats in parallel [4]")
    parser.add_argument("--rate", type=float, default=0, help="total send rate, 0 = max [0]")
    parser.add_argument("--rate-check", type=float, default=1000,
                        help="also run 1:1 chats at this fixed rate for latency [1000]")
    parser.add_argument("--acks", choices=("echo", "req"), default="echo",
                        help="how senders confirm a send: their message's echo on the thread, "
                        "or an ack event for a req [echo]")
    parser.add_argument("--groups", type=int, default=100, help="groups of 10 [100]")
    parser.add_argument("--fanout", type=int, default=1000, help="members of the big group")
    parser.add_argument("--fanout-messages", type=int, default=50)
    parser.add_argument("--history-small", type=int, default=10_000)
    parser.add_argument("--history-large", type=int, default=1_000_000)
    parser.add_argument("--history-reads", type=int, default=500)
    parser.add_argument("--storm", type=int, default=2000, help="clients in the storm")
    parser.add_argument("--quick", action="store_true", help="small numbers (the CI test)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--workdir", type=Path, help="keep the stacks' data and logs here")
    args = parser.parse_args(argv)
    if args.quick:
        args.messages, args.groups, args.fanout, args.fanout_messages = 1200, 4, 40, 10
        args.history_small, args.history_large, args.history_reads = 2_000, 20_000, 60
        args.storm, args.rate_check = 100, 200
    scenarios = args.scenario or ["all"]
    args.scenarios = list(SCENARIOS) if "all" in scenarios else scenarios
    return args


async def main(argv: Sequence[str] | None = None) -> list[Figures]:
    args = parse_args(argv)
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    logging.getLogger("mqtt").setLevel(logging.ERROR)  # aiomqtt's "pending publish" warnings
    modes = ["embedded", "mosquitto"] if args.mode == "both" else [args.mode]
    results: list[Figures] = []
    for mode in modes:
        results += await run_mode(mode, args)
    print("\n" + table(results))  # noqa: T201
    print("\n| target | this run | |\n|---|---|---|")  # noqa: T201
    for name, value, ok in verdicts(results):
        print(f"| {name} | {value} | {'PASS' if ok else 'FAIL'} |")  # noqa: T201
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))
    return results


if __name__ == "__main__":
    asyncio.run(main())

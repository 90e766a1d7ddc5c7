"""Scale check of mqim's Mosquitto plugin: 10k users, 100k memberships, 2k connected clients.

Starts a private Mosquitto with the plugin (like tests/mosquitto/conftest.py, on free loopback
ports), then measures:

- the time of one `sync` of all memberships (threads of ~20 members, 10 per user);
- connects/s of N concurrently connected users (each subscribes to its personal topic and its
  threads, so the broker holds a realistic subscription tree);
- the round trip of one membership change over the control topic (add/remove alternately);
- the stall those changes cause: publish->receive latency of an unrelated client (QoS 0, in a
  separate process, so the change driver's CPU does not count) without changes, during 1,000
  single changes, and during bulk messages of 1,000 changes each;
- the broker's resident memory.

Run from the repository root: `.venv/bin/python bench/mosquitto_acl.py` (`--help` for options).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import pwd
import random
import resource
import secrets
import socket
import struct
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import aiomqtt
from paho.mqtt import client as paho
from paho.mqtt.enums import CallbackAPIVersion

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from broker.link.client import derive_service_password  # noqa: E402  # after the sys.path line
from broker.mosquitto.control import MosquittoControl  # noqa: E402
from broker.mosquitto.plugin import (  # noqa: E402
    build_plugin,
    render_mosquitto_conf,
    running_mosquitto,
)
from models.tokens import issue_access_token  # noqa: E402

HOST = "127.0.0.1"
SERVICE = "mqim-bridge"
# Neither paho nor aiomqtt disables Nagle's algorithm; small request/response packets then wait
# for the peer's delayed ACK (~40 ms).
NODELAY = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)  # noqa: T201  # a CLI script


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def percentile(values: Sequence[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def make_memberships(
    users: list[str], per_user: int, thread_size: int, rng: random.Random
) -> dict[str, set[str]]:
    """Threads of ~thread_size members with each user in ~per_user threads."""
    slots = [u for u in users for _ in range(per_user)]
    rng.shuffle(slots)
    threads: dict[str, set[str]] = {}
    for i in range(0, len(slots), thread_size):
        threads[f"t{len(threads):05d}"] = set(slots[i:i + thread_size])
    return threads


@dataclass(frozen=True)
class Broker:
    port: int
    secret: str
    pid: int

    def service_client(self, tag: str) -> aiomqtt.Client:
        return aiomqtt.Client(
            HOST, self.port, identifier=f"{SERVICE}:{tag}", username=SERVICE,
            password=derive_service_password(self.secret, SERVICE), timeout=60,
            max_queued_outgoing_messages=100_000, socket_options=NODELAY,
        )

    def token(self, user: str) -> str:
        return issue_access_token(self.secret, user, uuid.uuid4().hex, 3600)


# The probe: an unrelated publisher/subscriber pair in its own process --------------------


def probe_main(port: int, secret: str, user: str, token: str | None, rate: float, ready: Event,
               stop: Event, results: Any) -> None:
    """Publish timestamps on im/u/{user} as the service; receive them as the user (or, without
    a token, as a second service connection, which no ACL state affects)."""
    latencies: list[float] = []
    sent = 0
    subscribed = threading.Event()

    def on_message(client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        (stamp,) = struct.unpack("d", message.payload)
        latencies.append(time.perf_counter() - stamp)

    def on_subscribe(client: paho.Client, userdata: Any, mid: int, codes: Any, props: Any) -> None:
        subscribed.set()

    if token is None:
        sub = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"{SERVICE}:probe-sub")
        sub.username_pw_set(SERVICE, derive_service_password(secret, SERVICE))
    else:
        sub = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"{user}:probe")
        sub.username_pw_set(user, token)
    sub.on_message = on_message
    sub.on_subscribe = on_subscribe
    pub = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"{SERVICE}:probe")
    pub.username_pw_set(SERVICE, derive_service_password(secret, SERVICE))
    for client in (sub, pub):
        client.connect(HOST, port)
        sock = client.socket()
        if isinstance(sock, socket.socket):  # no Nagle delay on the probe's small packets
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client.loop_start()
    sub.subscribe(f"im/u/{user}", qos=0)
    subscribed.wait(10)
    ready.set()
    interval, deadline = 1 / rate, time.perf_counter()
    while not stop.is_set():
        pub.publish(f"im/u/{user}", struct.pack("d", time.perf_counter()), qos=0)
        sent += 1
        deadline += interval
        time.sleep(max(0.0, deadline - time.perf_counter()))
    time.sleep(0.5)  # let the last messages arrive
    for client in (sub, pub):
        client.disconnect()
        client.loop_stop()
    results.put((sent, latencies))


class Probe:
    def __init__(self, broker: Broker, rate: float, *, as_service: bool = False) -> None:
        ctx = multiprocessing.get_context("spawn")
        user = f"probe{uuid.uuid4().hex[:6]}"
        self._ready, self._stop, self._results = ctx.Event(), ctx.Event(), ctx.Queue()
        self._process = ctx.Process(target=probe_main, args=(
            broker.port, broker.secret, user, None if as_service else broker.token(user), rate,
            self._ready, self._stop, self._results))

    async def __aenter__(self) -> Probe:
        self._process.start()
        if not await asyncio.to_thread(self._ready.wait, 20):
            raise RuntimeError("the probe did not connect")
        await asyncio.sleep(0.3)  # a few samples before the measured activity starts
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()

    async def result(self) -> tuple[int, list[float]]:
        sent, latencies = await asyncio.to_thread(self._results.get, True, 30)
        await asyncio.to_thread(self._process.join, 10)
        return sent, latencies


# Steps ---------------------------------------------------------------------------------


async def connect_clients(broker: Broker, users: list[str], memberships: dict[str, set[str]],
                          stack: AsyncExitStack, concurrency: int) -> float:
    by_user: dict[str, list[str]] = {}
    for thread, members in memberships.items():
        for user in members:
            by_user.setdefault(user, []).append(thread)
    gate = asyncio.Semaphore(concurrency)
    done = 0

    async def one(user: str) -> None:
        nonlocal done
        client = aiomqtt.Client(HOST, broker.port, identifier=f"{user}:bench", username=user,
                                password=broker.token(user), timeout=60)
        async with gate:
            await stack.enter_async_context(client)
            topics = [(f"im/u/{user}", 1)] + [(f"im/t/{t}", 1) for t in by_user.get(user, [])]
            await client.subscribe(topics)
        done += 1
        if done % 500 == 0:
            log(f"  {done} clients connected")

    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for user in users:
            group.create_task(one(user))
    return time.perf_counter() - started


async def single_changes(control: MosquittoControl, users: list[str],
                         memberships: dict[str, set[str]], count: int,
                         rng: random.Random) -> list[float]:
    """`count` changes, one per control message: add a non-member, then remove them again."""
    threads = list(memberships)
    latencies: list[float] = []
    pending: tuple[str, str] | None = None
    for _ in range(count):
        started = time.perf_counter()
        if pending is None:
            thread = rng.choice(threads)
            user = rng.choice(users)
            while user in memberships[thread]:
                user = rng.choice(users)
            await control.add_members(thread, [user])
            pending = (thread, user)
        else:
            await control.remove_members(pending[0], [pending[1]])
            pending = None
        latencies.append(time.perf_counter() - started)
    if pending is not None:
        await control.remove_members(pending[0], [pending[1]])
    return latencies


async def bulk_changes(control: MosquittoControl, users: list[str],
                       memberships: dict[str, set[str]], messages: int, per_message: int,
                       rng: random.Random) -> list[float]:
    """`messages` control messages of `per_message` changes: adds, then the same removes."""
    threads = list(memberships)
    latencies = []
    pairs: set[tuple[str, str]] = set()
    for i in range(messages):
        if i % 2 == 0:
            pairs = {(rng.choice(threads), rng.choice(users)) for _ in range(per_message)}
            pairs = {(t, u) for t, u in pairs if u not in memberships[t]}
        name = "addMembers" if i % 2 == 0 else "removeMembers"
        commands = [{"command": name, "thread": t, "users": [u]} for t, u in pairs]
        started = time.perf_counter()
        await control.run(commands)
        latencies.append(time.perf_counter() - started)
    if messages % 2:
        await control.run([{"command": "removeMembers", "thread": t, "users": [u]}
                           for t, u in pairs])
    return latencies


def row(name: str, values_ms: Sequence[float], extra: str = "") -> str:
    return (f"| {name:<44} | {len(values_ms):>6} | {percentile(values_ms, 50):>8.2f} | "
            f"{percentile(values_ms, 99):>8.2f} | {max(values_ms, default=float('nan')):>8.2f} |"
            f" {extra}")


async def run(args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)  # noqa: S311  # reproducible test data, not secrets
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = 2 * args.clients + 1000
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, needed), hard))

    workdir = Path(tempfile.mkdtemp(prefix="mqim-bench-"))
    log(f"building the plugin and the config in {workdir}")
    plugin = build_plugin(workdir / "plugin")
    secret = secrets.token_urlsafe(48)
    (workdir / "jwt-secret").write_text(secret + "\n")
    port = free_port()
    conf = render_mosquitto_conf(
        (REPO_ROOT / "mosquitto.conf").read_text(), tcp_port=port, ws_port=free_port(),
        data_dir=workdir, plugin_path=plugin, jwt_secret_file=workdir / "jwt-secret",
        topic_prefix="im", service_users=[SERVICE], user=pwd.getpwuid(os.geteuid()).pw_name,
    )
    # Control summaries are logged at "information"; keep the log small at this volume.
    conf = conf.replace("log_type information\n", "")
    (workdir / "mosquitto.conf").write_text(conf)

    users = [f"u{i:05d}" for i in range(args.users)]
    memberships = make_memberships(users, args.memberships, args.thread_size, rng)
    total = sum(len(m) for m in memberships.values())
    report: list[str] = []

    async with (
        running_mosquitto(workdir / "mosquitto.conf", host=HOST, port=port,
                          log_path=workdir / "mosquitto.log") as process,
        AsyncExitStack() as clients,
    ):
        broker = Broker(port, secret, process.pid)
        rss_start = rss_mib(process.pid)
        async with MosquittoControl(lambda: broker.service_client("control"),
                                    timeout=120) as control:
            log(f"sync: {len(users)} users, {len(memberships)} threads, {total} memberships")
            started = time.perf_counter()
            await control.sync(memberships)
            sync_s = time.perf_counter() - started
            rss_synced = rss_mib(process.pid)
            log(f"  sync took {sync_s:.3f} s; broker RSS {rss_synced:.1f} MiB")

            log(f"connecting {args.clients} clients ({args.concurrency} at a time)")
            connect_s = await connect_clients(broker, users[:args.clients], memberships,
                                              clients, args.concurrency)
            rss_connected = rss_mib(process.pid)
            log(f"  {args.clients / connect_s:.0f} connects/s; broker RSS {rss_connected:.1f} MiB")

            log(f"probe without changes ({args.probe_seconds} s at {args.probe_rate}/s)")
            async with Probe(broker, args.probe_rate) as probe:
                await asyncio.sleep(args.probe_seconds)
            idle_sent, idle = await probe.result()

            log(f"{args.changes} single membership changes, with the probe running")
            async with Probe(broker, args.probe_rate) as probe:
                change_lat = await single_changes(control, users, memberships, args.changes, rng)
            busy_sent, busy = await probe.result()

            log(f"{args.bulk_messages} bulk messages of {args.changes} changes, with the probe")
            async with Probe(broker, args.probe_rate) as probe:
                bulk_lat = await bulk_changes(control, users, memberships, args.bulk_messages,
                                              args.changes, rng)
            bulk_sent, bulk = await probe.result()

            log("a full sync again, with a service-account probe (users are out meanwhile)")
            async with Probe(broker, args.probe_rate, as_service=True) as probe:
                started = time.perf_counter()
                await control.sync(memberships)
                resync_s = time.perf_counter() - started
            resync_sent, resync = await probe.result()
            rss_end = rss_mib(process.pid)

    ms = [x * 1000 for x in change_lat]
    report += [
        "",
        f"Mosquitto 2.0.11 + mqim_auth plugin, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f}",
        f"{len(users)} users, {len(memberships)} threads, {total} memberships, "
        f"{args.clients} connected clients",
        "",
        f"| {'what':<44} | {'value':<32} |",
        f"|{'-' * 46}|{'-' * 34}|",
        f"| {f'sync of {total} memberships (first / again)':<44} | "
        f"{f'{sync_s * 1000:.0f} ms / {resync_s * 1000:.0f} ms':<32} |",
        f"| {f'connect + subscribe, {args.clients} clients':<44} | "
        f"{f'{args.clients / connect_s:.0f} connects/s':<32} |",
        f"| {'broker RSS: start / synced / connected / end':<44} | "
        f"{f'{rss_start:.1f} / {rss_synced:.1f} / {rss_connected:.1f} / {rss_end:.1f} MiB':<32} |",
        "",
        f"| {'latency (ms)':<44} | {'n':>6} | {'p50':>8} | {'p99':>8} | {'max':>8} |",
        f"|{'-' * 46}|{'-' * 8}|{'-' * 10}|{'-' * 10}|{'-' * 10}|",
        row("one membership change, control round trip", ms),
        row(f"one message of {args.changes} changes, round trip", [x * 1000 for x in bulk_lat]),
        row("probe publish->receive, no changes", [x * 1000 for x in idle],
            f"lost {idle_sent - len(idle)}"),
        row(f"probe during {args.changes} single changes", [x * 1000 for x in busy],
            f"lost {busy_sent - len(busy)}"),
        row(f"probe during {args.bulk_messages} x {args.changes}-change messages",
            [x * 1000 for x in bulk], f"lost {bulk_sent - len(bulk)}"),
        row("service probe during a full sync", [x * 1000 for x in resync],
            f"lost {resync_sent - len(resync)}"),
    ]
    print("\n".join(report), flush=True)  # noqa: T201  # the result of a CLI script
    log(f"broker log: {workdir / 'mosquitto.log'}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=10_000, help="users (default 10000)")
    parser.add_argument("--memberships", type=int, default=10,
                        help="threads per user (default 10)")
    parser.add_argument("--thread-size", type=int, default=20,
                        help="members per thread (default 20)")
    parser.add_argument("--clients", type=int, default=2_000,
                        help="users connected at once (default 2000)")
    parser.add_argument("--concurrency", type=int, default=100,
                        help="connects in flight at once (default 100)")
    parser.add_argument("--changes", type=int, default=1_000,
                        help="membership changes measured (default 1000)")
    parser.add_argument("--bulk-messages", type=int, default=10,
                        help="bulk control messages of --changes changes each (default 10)")
    parser.add_argument("--probe-rate", type=float, default=1000,
                        help="probe messages per second (default 1000)")
    parser.add_argument("--probe-seconds", type=float, default=3,
                        help="length of the idle probe (default 3)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    args = parser.parse_args(argv)
    if args.clients > args.users:
        parser.error("--clients must not exceed --users")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()

"""10,000 idle clients on the embedded broker: memory (RSS) and CPU per connected client, beside
amqtt itself with the same clients in the same run.

Starts `mqim serve` on the embedded default (tests/stacks.py: amqtt in-process, SQLite), makes
`--clients` users with a login session each directly through the models (bulk inserts), and
mints their access tokens with the server's secret, as a login would. Then `--clients` raw MQTT
3.1.1 connections (one socket each, from this process: no client library's per-client threads
or buffers in the way) log in with their user id and token, subscribe to their own
`{prefix}/u/{user}` as an app does, and sit idle. It reports the server's RSS before and after,
per client, the connect rate, and the server's CPU while the clients sit idle for `--idle`
seconds. The baseline is a bare amqtt broker (the same library, no mqim plugins, anonymous
login) in a process of its own, with the same number of raw clients subscribing to one topic
each.

    .venv/bin/python bench/idle_bench.py --clients 10000
    .venv/bin/python bench/idle_bench.py --clients 500 --idle 2
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import struct
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.clock import utcnow
from models.db import open_database
from models.session import LoginSession
from models.tokens import issue_access_token
from models.user import User
from tests.helpers import free_port, unique_id
from tests.stacks import running_stack

CONNECTS_AT_ONCE = 200  # connections being opened at a time: a fleet reconnecting, not a storm
KEEPALIVE = 600  # seconds: longer than the bench, so an idle client sends nothing at all


def _string(value: str) -> bytes:
    raw = value.encode()
    return struct.pack("!H", len(raw)) + raw


def _packet(kind: int, body: bytes) -> bytes:
    """A fixed header (type and flags, remaining length as a varint) and the body."""
    length, header = len(body), bytearray([kind])
    while True:
        byte, length = length % 128, length // 128
        header.append(byte | (0x80 if length else 0))
        if not length:
            return bytes(header) + body


def connect_packet(client_id: str, username: str | None, password: str | None) -> bytes:
    flags = 0x02 | (0x80 if username else 0) | (0x40 if password else 0)  # clean session
    body = _string("MQTT") + bytes([4, flags]) + struct.pack("!H", KEEPALIVE) + _string(client_id)
    body += (_string(username) if username else b"") + (_string(password) if password else b"")
    return _packet(0x10, body)


def subscribe_packet(topic: str) -> bytes:
    return _packet(0x82, struct.pack("!H", 1) + _string(topic) + bytes([1]))


@dataclass(frozen=True)
class Login:
    client_id: str
    username: str | None
    password: str | None
    topic: str


async def _read_packet(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    kind = (await reader.readexactly(1))[0]
    length, shift = 0, 0
    while True:
        byte = (await reader.readexactly(1))[0]
        length |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return kind, await reader.readexactly(length)


async def open_clients(port: int, logins: Sequence[Login]) -> tuple[list[asyncio.StreamWriter],
                                                                      float]:
    """Every login connected and subscribed (SystemExit on a refusal); the writers (to keep
    the sockets open) and the seconds it took."""
    gate = asyncio.Semaphore(CONNECTS_AT_ONCE)
    done = 0

    async def one(login: Login) -> asyncio.StreamWriter:
        nonlocal done
        async with gate:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(connect_packet(login.client_id, login.username, login.password))
            kind, body = await _read_packet(reader)
            if kind >> 4 != 2 or body[1] != 0:
                raise SystemExit(f"CONNACK refused {login.client_id}: {body.hex()}")
            writer.write(subscribe_packet(login.topic))
            kind, body = await _read_packet(reader)
            if kind >> 4 != 9 or body[-1] >= 0x80:
                raise SystemExit(f"SUBACK refused {login.topic}: {body.hex()}")
        done += 1
        if done % 1000 == 0 or done == len(logins):
            sys.stderr.write(f"\r  connected {done}/{len(logins)}")
            sys.stderr.flush()
        return writer

    start = time.perf_counter()
    writers = await asyncio.gather(*(one(login) for login in logins))
    sys.stderr.write("\n")
    return list(writers), time.perf_counter() - start


@dataclass
class Figures:
    rss_before_mb: float = 0.0
    rss_after_mb: float = 0.0
    connect_s: float = 0.0
    idle_cpu_pct: float = 0.0

    def per_client_kb(self, clients: int) -> float:
        return (self.rss_after_mb - self.rss_before_mb) * 1024 / clients


def _cpu(process: psutil.Process) -> float:
    return sum(float(t.user + t.system) for t in (
        p.cpu_times() for p in (process, *process.children(recursive=True))))


async def measure(pid: int, port: int, logins: Sequence[Login], idle: float) -> Figures:
    process = psutil.Process(pid)
    figures = Figures(rss_before_mb=process.memory_info().rss / 2**20)
    writers, figures.connect_s = await open_clients(port, logins)
    cpu = _cpu(process)
    await asyncio.sleep(idle)
    figures.idle_cpu_pct = (_cpu(process) - cpu) / idle * 100
    figures.rss_after_mb = process.memory_info().rss / 2**20
    for writer in writers:
        writer.close()
    return figures


async def mqim_figures(clients: int, idle: float, workdir: Path) -> Figures:
    async with running_stack("embedded", workdir) as stack:
        settings = stack.settings
        run = unique_id("")
        users = [f"idle{run}{i:05d}" for i in range(clients)]
        expires = utcnow() + timedelta(days=1)
        async with open_database(settings):  # the models are usable once it is open
            sessions = [LoginSession(id=secrets.token_hex(16), user_id=u, platform="android",
                                     refresh_hash="!", expires_at=expires) for u in users]
            await User.bulk_create([User(id=u, name=u[:20], password_hash="!")  # noqa: S106
                                    for u in users], batch_size=1000)
            await LoginSession.bulk_create(sessions, batch_size=1000)
        ttl = 3600
        logins = [Login(s.mqtt_client_id, s.user_id,
                        issue_access_token(settings.jwt_secret, s.user_id, s.id, ttl),
                        f"{settings.topic_prefix}/u/{s.user_id}") for s in sessions]
        await asyncio.sleep(1)  # the server settles after its start before RSS is read
        return await measure(stack.process.pid, settings.mqtt.port, logins, idle)


BARE_AMQTT = textwrap.dedent("""
    import asyncio, sys
    from amqtt.broker import Broker
    async def main():
        broker = Broker({"listeners": {"default": {"type": "tcp", "bind": sys.argv[1]}},
                         "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin":
                                     {"allow_anonymous": True}}})
        await broker.start()
        await asyncio.Event().wait()
    asyncio.run(main())
""")


async def amqtt_figures(clients: int, idle: float) -> Figures:
    port = free_port()
    child = subprocess.Popen([sys.executable, "-c", BARE_AMQTT, f"127.0.0.1:{port}"])  # noqa: ASYNC220, S603
    try:
        for _ in range(200):
            try:  # a whole CONNECT, so the broker does not log a broken one
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(connect_packet("probe", None, None))
                _ = await _read_packet(reader)
                writer.close()
                break
            except OSError:
                await asyncio.sleep(0.05)
        await asyncio.sleep(1)
        logins = [Login(f"bare{i}", None, None, f"bare/u/{i}") for i in range(clients)]
        return await measure(child.pid, port, logins, idle)
    finally:
        child.terminate()
        _ = await asyncio.to_thread(child.wait)


def report(clients: int, idle: float, mqim: Figures, bare: Figures) -> None:
    rows = [("mqim serve (embedded, SQLite)", mqim), ("bare amqtt (baseline)", bare)]
    lines = [f"\n== {clients} idle clients, each connected and subscribed to one topic, "
             f"then idle {idle:.0f} s",
             f"  {'':32} {'RSS before':>11} {'RSS after':>10} {'per client':>11} "
             f"{'connect/s':>10} {'idle CPU':>9}"]
    for name, f in rows:
        lines.append(f"  {name:32} {f.rss_before_mb:8.0f} MB {f.rss_after_mb:7.0f} MB "
                     f"{f.per_client_kb(clients):7.1f} KiB {clients / f.connect_s:10.0f} "
                     f"{f.idle_cpu_pct:8.1f}%")
    lines.append(f"  mqim / bare amqtt, per client: "
                 f"{mqim.per_client_kb(clients) / bare.per_client_kb(clients):.2f}x")
    print("\n".join(lines), flush=True)  # noqa: T201


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=10000)
    parser.add_argument("--idle", type=float, default=20.0,
                        help="seconds the clients sit idle while CPU is measured [20]")
    args = parser.parse_args()
    print(f"$ {' '.join([Path(sys.executable).name, *sys.argv])}", flush=True)  # noqa: T201
    with tempfile.TemporaryDirectory(prefix="idle-bench-") as tmp:
        mqim = await mqim_figures(args.clients, args.idle, Path(tmp))
    bare = await amqtt_figures(args.clients, args.idle)
    report(args.clients, args.idle, mqim, bare)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

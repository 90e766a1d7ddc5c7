"""Message throughput with push on and off: a group of 1,001 where 1,000 members are offline
and each has a UnifiedPush target, against the same group with `MQIM_REACH=false`.

Starts a real stack as the tests do (tests/stacks.py: `mqim serve` with SQLite, or with
Mosquitto and a throwaway PostgreSQL database) once per setting, registers the sender over
HTTP, fills the 1,000 members, their login sessions and their push targets directly through
the models (bulk inserts), and runs a UnifiedPush receiver (tests/push) in a process of its
own, as a push service is in production: in this process it would share the senders' event
loop, and each wave of 1,000 pushes would stall the senders themselves. Then
`--senders` clients send `--messages` messages over real HTTP as fast as they are answered, and
the bench reports messages per second for each setting, their ratio (target: push on within
10% of push off, PASS/FAIL), and with push on how many notifications reached the receiver and
how long after the last send the last of them came (pushes are coalesced per burst, so far
fewer than messages x members).

    .venv/bin/python bench/push_bench.py --db both --messages 5000
    .venv/bin/python bench/push_bench.py --db sqlite --messages 300 --senders 4
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from db_bench import db_parser, each_database, print_header

from models.clock import utcnow
from models.db import open_database
from models.push import PushKind, PushTarget
from models.session import LoginSession
from models.thread import Member, Role, Thread, ThreadKind
from models.user import User
from tests.helpers import free_port, register, unique_id
from tests.push.receivers import Receivers
from tests.stacks import running_stack

REPO = Path(__file__).resolve().parents[1]
MEMBERS = 1000
TARGET_RATIO = 0.9
# The default: a busy thread (never quiet) pushes each member every 10 x this
# (actions/reach.py). With --coalesce-ms 100 the senders share the server with a wave of 1,000
# pushes every second: a stress far beyond a real thread's.
COALESCE_MS = 1000


@asynccontextmanager
async def receiver_process() -> AsyncIterator[Receivers]:
    """The UnifiedPush receivers in a child process; `Receivers` only names their URLs here."""
    port = free_port()
    child = subprocess.Popen(  # noqa: ASYNC220, S603 -- started once, stopped below
        [sys.executable, "-m", "tests.push.receivers", str(port)],
        cwd=REPO)
    receivers = Receivers(f"http://127.0.0.1:{port}")
    try:
        async with httpx.AsyncClient(base_url=receivers.base) as http:
            for _ in range(200):
                try:
                    _ = (await http.get("/received")).raise_for_status()
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
        yield receivers
    finally:
        child.terminate()
        _ = await asyncio.to_thread(child.wait)


def cpu_seconds(pid: int) -> float:
    """CPU seconds used so far by a process and its children (`mqim serve`, Mosquitto aside)."""
    process = psutil.Process(pid)
    return sum(float(t.user + t.system) for t in (
        p.cpu_times() for p in (process, *process.children(recursive=True))))


async def received(receivers: Receivers) -> dict[str, list[int]]:
    async with httpx.AsyncClient(base_url=receivers.base, timeout=30) as http:
        got: dict[str, list[int]] = (await http.get("/received")).raise_for_status().json()
        return got


async def populate(owner: str, receivers: Receivers) -> str:
    """A group of `owner` and MEMBERS offline members, each with a live session and a
    UnifiedPush target; its thread id."""
    run = unique_id("")
    thread_id = f"pb{run}"
    users = [f"pm{run}{i:04d}" for i in range(MEMBERS)]
    expires = utcnow() + timedelta(days=30)
    await User.bulk_create([User(id=u, name=u[:20], password_hash="!")  # noqa: S106
                            for u in users],
                           batch_size=1000)
    sessions = [LoginSession(id=secrets.token_hex(16), user_id=u, platform="android",
                             refresh_hash="!", expires_at=expires) for u in users]
    await LoginSession.bulk_create(sessions, batch_size=1000)
    await PushTarget.bulk_create([
        PushTarget(user_id=s.user_id, session_id=s.id, kind=PushKind.UNIFIEDPUSH, keys={},
                   endpoint=receivers.unifiedpush(s.user_id)) for s in sessions],
        batch_size=1000)
    _ = await Thread.create(id=thread_id, kind=ThreadKind.GROUP, name="push bench", owner_id=owner)
    await Member.bulk_create(
        [Member(thread_id=thread_id, user_id=owner, role=Role.OWNER),
         *(Member(thread_id=thread_id, user_id=u) for u in users)], batch_size=1000)
    return thread_id


async def throughput(db: str, reach: bool, messages: int, senders: int, workdir: Path,
                     coalesce_ms: int) -> tuple[float, int, float, float]:
    """(messages per second, notifications received, seconds from the last send to the last
    notification, mqim's CPU µs per message, pushes included) for one setting."""
    mode = "embedded" if db == "sqlite" else "mosquitto"
    await asyncio.to_thread(workdir.mkdir, parents=True)
    async with running_stack(mode, workdir, reach=reach, push_coalesce_ms=coalesce_ms) as stack, \
            receiver_process() as receivers, \
            httpx.AsyncClient(base_url=f"http://{stack.settings.http}", timeout=60) as http:
        owner = await register(http)
        async with open_database(stack.settings):
            thread_id = await populate(owner.user_id, receivers)
        url = f"/api/threads/{thread_id}/messages"
        remaining = iter(range(messages))

        async def sender() -> None:
            for i in remaining:
                response = await http.post(url, headers=owner.auth, json={
                    "client_msg_id": f"m{i}", "body": f"bench message {i}"})
                response.raise_for_status()

        for i in range(5):  # warm up
            (await http.post(url, headers=owner.auth, json={
                "client_msg_id": f"w{i}", "body": "warm up"})).raise_for_status()
        cpu = cpu_seconds(stack.process.pid)
        start = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(senders)))
        sent = time.perf_counter()
        rate = messages / (sent - start)
        if not reach:
            return rate, 0, 0.0, (cpu_seconds(stack.process.pid) - cpu) / messages * 1e6
        # The last burst is pushed once the thread is quiet: every member hears of it.
        newest = messages + 5
        deadline = time.monotonic() + 120
        while True:
            got = await received(receivers)
            if sum(1 for seqs in got.values() if seqs and seqs[-1] == newest) == MEMBERS:
                break
            if time.monotonic() > deadline:
                raise SystemExit("the last burst was not pushed to every member in 120 s")
            await asyncio.sleep(0.2)
        drained = time.perf_counter() - sent
        used = (cpu_seconds(stack.process.pid) - cpu) / messages * 1e6
        return rate, sum(len(v) for v in got.values()), drained, used


async def bench(db: str, messages: int, senders: int, workdir: Path, coalesce_ms: int) -> bool:
    off, _, _, off_cpu = await throughput(db, False, messages, senders, workdir / "off",
                                          coalesce_ms)
    on, pushed, drained, on_cpu = await throughput(db, True, messages, senders, workdir / "on",
                                           coalesce_ms)
    ok = on >= off * TARGET_RATIO
    print("\n".join([  # noqa: T201
        f"\n== {db}: {messages} messages by {senders} HTTP senders into a group of "
        f"{MEMBERS + 1}, {MEMBERS} offline with a push target each",
        f"  push off (MQIM_REACH=false): {off:8.1f} messages/s   mqim CPU {off_cpu:6.0f} µs/msg",
        f"  push on:                     {on:8.1f} messages/s   mqim CPU {on_cpu:6.0f} µs/msg "
        f"(pushes included)  ({on / off:.2f}x)  "
        f"target >= {TARGET_RATIO:.2f}x  {'PASS' if ok else 'FAIL'}",
        f"  push on: {pushed} notifications ({pushed / MEMBERS:.1f} per member), the last "
        f"{drained:.1f} s after the last send (coalesce {coalesce_ms} ms)",
    ]), flush=True)
    return ok


async def main() -> int:
    parser = db_parser(__doc__)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--senders", type=int, default=8)
    parser.add_argument("--coalesce-ms", type=int, default=COALESCE_MS,
                        help=f"MQIM_PUSH_COALESCE_MS of the stack [{COALESCE_MS}]")
    args = parser.parse_args()
    if not args.child:
        print_header()
    if args.db == "both":
        return await each_database(__file__, ["--messages", str(args.messages),
                                              "--senders", str(args.senders),
                                              "--coalesce-ms", str(args.coalesce_ms)])
    with tempfile.TemporaryDirectory(prefix="push-bench-") as tmp:
        ok = await bench(args.db, args.messages, args.senders, Path(tmp), args.coalesce_ms)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

"""The thread list at scale: `GET /api/threads` for a user in 1,000 threads beside one in 10.

Starts a real stack as the tests do (tests/stacks.py: `mqim serve` with SQLite, or with
Mosquitto and a throwaway PostgreSQL database), registers the two users over HTTP, then fills
the database directly through the models (bulk inserts): 1,000 groups for the big user, each
with 20-49 messages from a peer, 0-6 of them unread, every tenth newest message mentioning the
user, 20 pinned and 50 archived; the small user is in 10 of them. Then it times

- the model `list_threads` (the one SQL statement and its rows) and the use case `threads_of`
  (that plus building the contract's shapes), in-process, and counts the SQL statements one
  list costs;
- `GET /api/threads` over real HTTP against the running server (auth, query, JSON);

and prints p50/p99 for 1,000 vs 10 threads, their ratio, and PASS/FAIL against the targets
(p99 <= 30 ms for 1,000 threads over HTTP; 1,000 threads cost at most 2x what 10 do, in-process:
the number of threads must not multiply queries).

    .venv/bin/python bench/threadlist_bench.py --db both
    .venv/bin/python bench/threadlist_bench.py --db sqlite --runs 50
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from actions.threadviews import threads_of  # after the path fix above
from models.db import open_database
from models.message import EntryKind, Message
from models.thread import Member, Role, Thread, ThreadKind
from models.threadlist import ListQuery, list_threads
from models.user import User
from tests.helpers import Account, register, unique_id
from tests.stacks import running_stack

BIG, SMALL = 1000, 10
P99_TARGET_MS = 30.0
RATIO_TARGET = 2.0


def percentile(values: Sequence[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


@dataclass
class Timing:
    label: str
    samples: list[float]  # milliseconds

    @property
    def p50(self) -> float:
        return percentile(self.samples, 50)

    @property
    def p99(self) -> float:
        return percentile(self.samples, 99)


async def timed(label: str, runs: int, call: Callable[[], Awaitable[object]]) -> Timing:
    for _ in range(max(5, runs // 10)):  # warm up: caches, prepared statements, plans
        await call()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - start) * 1000)
    return Timing(label, samples)


async def populate(big: str, small: str) -> None:
    """1,000 groups for `big` (10 of them with `small` too), filled by bulk inserts."""
    run = unique_id("")
    peer = f"peer{run}"
    _ = await User.create(id=peer, name="Bench Peer", password_hash="!")  # noqa: S106
    threads, members, messages = [], [], []
    for i in range(BIG):
        thread_id = f"tb{run}{i:04d}"
        count = 20 + i % 30
        unread = i % 7
        threads.append(Thread(id=thread_id, kind=ThreadKind.GROUP, name=f"bench {i}",
                              owner_id=big, last_seq=count))
        members.append(Member(thread_id=thread_id, user_id=big, role=Role.OWNER,
                              read_seq=count - unread, pinned=i % 50 == 0,
                              archived=i % 20 == 1))
        members.append(Member(thread_id=thread_id, user_id=peer, read_seq=count))
        if i < SMALL:
            members.append(Member(thread_id=thread_id, user_id=small, read_seq=count - unread))
        for seq in range(1, count + 1):
            mentions = [big, small] if seq == count and i % 10 == 0 else []
            messages.append(Message(id=f"mb{run}{i:04d}{seq:03d}", thread_id=thread_id, seq=seq,
                                    kind=EntryKind.MESSAGE, sender_id=peer,
                                    client_msg_id=f"b{i}-{seq}", type="text",
                                    body=f"message {seq} of thread {i}", mentions=mentions,
                                    attachments=[]))
    await Thread.bulk_create(threads, batch_size=1000)
    await Member.bulk_create(members, batch_size=1000)
    await Message.bulk_create(messages, batch_size=1000)


class StatementCounter(logging.Handler):
    """Counts the SQL statements tortoise's clients log (at DEBUG) while it is attached."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


async def statements_per_list(user_id: str) -> int:
    logger = logging.getLogger("tortoise.db_client")
    counter, level = StatementCounter(), logger.level
    logger.addHandler(counter)
    logger.setLevel(logging.DEBUG)
    try:
        _ = await threads_of(user_id, ListQuery())
    finally:
        logger.removeHandler(counter)
        logger.setLevel(level)
    return counter.count


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


async def bench(db: str, runs: int, workdir: Path) -> bool:
    mode = "embedded" if db == "sqlite" else "mosquitto"
    async with running_stack(mode, workdir) as stack:
        base = f"http://{stack.settings.http}"
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            big, small = await register(http), await register(http)
            async with open_database(stack.settings):
                start = time.perf_counter()
                await populate(big.user_id, small.user_id)
                filled = time.perf_counter() - start
                listed = await threads_of(big.user_id, ListQuery(archived=True))
                if len(listed) != BIG:
                    raise RuntimeError(f"listed {len(listed)} threads, not {BIG}")
                statements = await statements_per_list(big.user_id)
                inproc = [
                    await timed("model (SQL), 1,000", runs, lambda: list_threads(
                        big.user_id, ListQuery(archived=True))),
                    await timed("model (SQL), 10", runs, lambda: list_threads(
                        small.user_id, ListQuery(archived=True))),
                    await timed("in-process, 1,000", runs, lambda: threads_of(
                        big.user_id, ListQuery(archived=True))),
                    await timed("in-process, 10", runs, lambda: threads_of(
                        small.user_id, ListQuery(archived=True))),
                ]

            def get(account: Account) -> Callable[[], Awaitable[object]]:
                async def call() -> None:
                    response = await http.get("/api/threads", headers=account.auth,
                                              params={"archived": "true"})
                    response.raise_for_status()
                return call

            over_http = [await timed("HTTP, 1,000", runs, get(big)),
                         await timed("HTTP, 10", runs, get(small))]
    lines: list[str] = []
    lines.append(f"\n== {db}: {BIG} threads ({filled:.1f} s to fill), {runs} runs each; "
                 f"SQL statements per list: {statements}")
    lines.append(f"  {'':<22}{'p50 ms':>9}{'p99 ms':>9}")
    for t in (*inproc, *over_http):
        lines.append(f"  {t.label:<22}{t.p50:>9.2f}{t.p99:>9.2f}")
    ratio_model = inproc[0].p50 / inproc[1].p50
    ratio_in = inproc[2].p50 / inproc[3].p50
    ratio_http = over_http[0].p50 / over_http[1].p50
    p99_ok = over_http[0].p99 <= P99_TARGET_MS
    ratio_ok = ratio_in <= RATIO_TARGET
    lines.append(f"  HTTP p99, 1,000 threads: {over_http[0].p99:.2f} ms "
                 f"(target <= {P99_TARGET_MS:.0f} ms)  {verdict(p99_ok)}")
    lines.append(f"  ratio 1,000 / 10, model (SQL + rows) p50: {ratio_model:.2f}x (reported)")
    lines.append(f"  ratio 1,000 / 10, in-process p50: {ratio_in:.2f}x "
                 f"(target <= {RATIO_TARGET:.0f}x)  {verdict(ratio_ok)}")
    lines.append(f"  ratio 1,000 / 10, HTTP p50: {ratio_http:.2f}x (reported: the answer is 100x "
                 "larger, so serialising and sending it grows with it)")
    lines.append(f"  statements per list: {statements} (target <= 2)  {verdict(statements <= 2)}")
    print("\n".join(lines), flush=True)  # noqa: T201
    return p99_ok and ratio_ok and statements <= 2


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    if args.db == "both":
        # One process per database: tortoise keeps per-dialect SQL on the models, so a process
        # opens one kind of database.
        codes = []
        for db in ("sqlite", "postgres"):
            child = await asyncio.create_subprocess_exec(
                sys.executable, __file__, "--db", db, "--runs", str(args.runs))
            codes.append(await child.wait())
        return max(codes)
    with tempfile.TemporaryDirectory(prefix="threadlist-bench-") as tmp:
        return 0 if await bench(args.db, args.runs, Path(tmp)) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

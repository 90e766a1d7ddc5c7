"""Receipts at scale: `GET …/messages/{mid}/receipts` for a message in a group of 1,000 members.

Starts a real stack as the tests do (tests/stacks.py: `mqim serve` with SQLite, or with
Mosquitto and a throwaway PostgreSQL database), registers the group's owner over HTTP, then fills
the database directly through the models (bulk inserts): 999 more users, one group with all
1,000 of them, 2,000 messages from the owner, and each member's read and delivered marks spread
over the thread (read up to seq 2i mod 2,000, delivered up to 0-300 seqs further). Then it times,
over real HTTP against the running server (auth, query, JSON), in alternation:

- the receipts of message 1,000 (about half the members read it, a few more received it);
- baselines in the same run: `GET /api/threads/{id}` (the thread's details, which list every
  participant), and `POST …/read` by one member (a single-member read mark that does not move);

and in-process the use case `message_receipts`, with the SQL statements it costs. PASS/FAIL
against the issue's target: receipts p99 <= 20 ms over HTTP.

    .venv/bin/python bench/receipts_bench.py --db both --runs 200
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from db_bench import db_parser, each_database, print_header
from threadlist_bench import Timing, getter, statements_of, timed, timed_pair, verdict

from actions.receipts import message_receipts  # after the path fix above
from models.db import open_database
from models.message import EntryKind, Message
from models.thread import Member, Role, Thread, ThreadKind
from models.user import User
from tests.helpers import Account, register, unique_id
from tests.stacks import running_stack

MEMBERS = 1000
MESSAGES = 2000
TARGET_SEQ = 1000
P99_TARGET_MS = 20.0


async def populate(owner: str) -> tuple[str, str]:
    """The group and the id of its message at TARGET_SEQ, filled by bulk inserts."""
    run = unique_id("")
    thread_id = f"tr{run}"
    users = [f"r{run}{i:04d}" for i in range(1, MEMBERS)]
    await User.bulk_create([User(id=u, name=f"reader {i}", password_hash="!")  # noqa: S106
                            for i, u in enumerate(users)], batch_size=1000)
    _ = await Thread.create(id=thread_id, kind=ThreadKind.GROUP, name="receipts bench",
                        owner_id=owner, last_seq=MESSAGES)
    members = [Member(thread_id=thread_id, user_id=owner, role=Role.OWNER, read_seq=MESSAGES,
                      delivered_seq=MESSAGES)]
    for i, user in enumerate(users, start=1):
        read = (2 * i) % MESSAGES
        members.append(Member(thread_id=thread_id, user_id=user, read_seq=read,
                              delivered_seq=min(MESSAGES, read + (i * 37) % 300)))
    await Member.bulk_create(members, batch_size=1000)
    await Message.bulk_create([
        Message(id=f"mr{run}{seq:05d}", thread_id=thread_id, seq=seq, kind=EntryKind.MESSAGE,
                sender_id=owner, client_msg_id=f"r{seq}", type="text", body=f"message {seq}",
                mentions=[], attachments=[]) for seq in range(1, MESSAGES + 1)],
        batch_size=1000)
    return thread_id, f"mr{run}{TARGET_SEQ:05d}"


def reader(http: httpx.AsyncClient, account: Account, thread_id: str,
           ) -> Callable[[], Awaitable[object]]:
    """A read mark that does not move (the owner read everything): one member's row."""
    async def call() -> None:
        response = await http.post(f"/api/threads/{thread_id}/read", headers=account.auth,
                                   json={"seq": 1})
        response.raise_for_status()
    return call


async def bench(db: str, runs: int, workdir: Path) -> bool:
    mode = "embedded" if db == "sqlite" else "mosquitto"
    async with running_stack(mode, workdir) as stack:
        base = f"http://{stack.settings.http}"
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            owner = await register(http)
            async with open_database(stack.settings):
                start = time.perf_counter()
                thread_id, message_id = await populate(owner.user_id)
                filled = time.perf_counter() - start
                answer = await message_receipts(owner.user_id, thread_id, message_id)
                sql = await statements_of(
                    lambda: message_receipts(owner.user_id, thread_id, message_id))
                inproc = await timed("in-process receipts", runs,
                                     lambda: message_receipts(owner.user_id, thread_id,
                                                              message_id))
            path = f"/api/threads/{thread_id}/messages/{message_id}/receipts"
            body = (await http.get(path, headers=owner.auth)).json()["data"]
            if body != answer.model_dump():
                raise RuntimeError("HTTP and in-process receipts differ")
            receipts, info = await timed_pair(("HTTP receipts", "HTTP thread info"), runs, (
                getter(http, owner, path), getter(http, owner, f"/api/threads/{thread_id}")))
            read_mark = await timed("HTTP read mark (baseline)", runs,
                                    reader(http, owner, thread_id))
    timings: list[Timing] = [receipts, info, read_mark, inproc]
    lines = [f"\n== {db}: a group of {MEMBERS}, {MESSAGES} messages ({filled:.1f} s to fill), "
             f"{runs} runs each; message {TARGET_SEQ}: read_by {len(answer.read_by)}, "
             f"delivered_to {len(answer.delivered_to)}, pending {len(answer.pending)}",
             f"  {'':<28}{'p50 ms':>9}{'p99 ms':>9}"]
    lines += [f"  {t.label:<28}{t.p50:>9.2f}{t.p99:>9.2f}" for t in timings]
    ok = receipts.p99 <= P99_TARGET_MS
    lines += [f"  SQL statements per receipts call: {len(sql)} (access check 3, the list 1)",
              f"  HTTP receipts p99: {receipts.p99:.2f} ms (target <= {P99_TARGET_MS:.0f} ms)  "
              f"{verdict(ok)}"]
    print("\n".join(lines), flush=True)  # noqa: T201
    return ok


async def main() -> int:
    parser = db_parser(__doc__)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    if not args.child:
        print_header()
    if args.db == "both":
        return await each_database(__file__, ["--runs", str(args.runs)])
    with tempfile.TemporaryDirectory(prefix="receipts-bench-") as tmp:
        return 0 if await bench(args.db, args.runs, Path(tmp)) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

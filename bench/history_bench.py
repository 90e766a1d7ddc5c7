"""History pages at scale, with reactions and edits beside a plain thread.

Starts a real stack as the tests do (tests/stacks.py: `mqim serve` with SQLite, or Mosquitto and
a throwaway PostgreSQL database), registers two users and creates two groups over HTTP, then
fills each group with N messages (default 1,000,000) straight into the database, as
search_bench.py does (SQLite `executemany`, PostgreSQL COPY). The "rich" group then gets, by a
few set-based statements: reactions on 10% of its messages (1 to 3 rows each, from up to three
users), and an edit on 2% (versions 0 and 1 in `message_version`, the new body and `edited_at` on
the message). The "plain" group gets nothing: it is the baseline.

Then it times, in-process through the use case the route calls (`actions.history.history`, which
adds each message's reactions, reply count and, for the reader's own messages, status), 50
entries a page, as the sender of the messages (so the status is computed too):

- the newest page, and pages at a random `before_seq` deep in the thread (the same seqs in
  both groups), the two groups timed in alternation;
- p50/p99 of each, and the ratio rich/plain against the target (<= 2x).

    .venv/bin/python bench/history_bench.py --db both --messages 1000000 --pages 200
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from db_bench import db_parser, each_database, print_header
from search_bench import fill, percentile

from actions import history  # after the path fix above
from models.db import open_database
from tests.helpers import create_group, register
from tests.stacks import Stack, running_stack

RATIO_TARGET = 2.0
PAGE = 50
# Set-based decorations of the rich thread ($1/? = its id; `seq % 10 = 3`: 10% of the messages,
# 1 + seq % 3 reactions each; `seq % 50 = 7`: 2% edited). The same text serves both dialects.
_REACTORS = "(SELECT 1 AS k, 'h5reactor1' AS u, '👍' AS e UNION ALL SELECT 2, 'h5reactor2', '❤' " \
            "UNION ALL SELECT 3, 'h5reactor3', '😂')"
_REACT = ("INSERT INTO message_reaction (message_id, thread_id, user_id, emoji, created_at) "  # noqa: S608
          f"SELECT m.id, m.thread_id, r.u, r.e, m.created_at FROM message m, {_REACTORS} r "
          "WHERE m.thread_id = {p} AND m.kind = 'message' AND m.seq % 10 = 3 "
          "AND r.k <= 1 + m.seq % 3")
_VERSIONS = ("INSERT INTO message_version (message_id, version, body, content, created_at) "
             "SELECT m.id, v.v, CASE WHEN v.v = 0 THEN m.body ELSE m.body || ' (edited)' END, "
             "NULL, m.created_at FROM message m, (SELECT 0 AS v UNION ALL SELECT 1) v "
             "WHERE m.thread_id = {p} AND m.kind = 'message' AND m.seq % 50 = 7")
_EDIT = ("UPDATE message SET body = body || ' (edited)', edited_at = created_at "
         "WHERE thread_id = {p} AND kind = 'message' AND seq % 50 = 7")


async def decorate(stack: Stack, thread_id: str) -> tuple[int, int]:
    """Reactions and edits on the rich thread; (reaction rows, edited messages)."""
    url = stack.settings.db_url
    count_sql = ("SELECT (SELECT COUNT(*) FROM message_reaction WHERE thread_id = {p}), "
                 "(SELECT COUNT(*) FROM message WHERE thread_id = {p} AND edited_at IS NOT NULL)")
    if url.startswith("sqlite://"):
        db = sqlite3.connect(url.removeprefix("sqlite://").split("?", 1)[0], timeout=60)
        for sql in (_REACT, _VERSIONS, _EDIT):
            db.execute(sql.format(p="?"), (thread_id,))
        db.commit()
        db.execute("ANALYZE")
        row = db.execute(count_sql.format(p="?"), (thread_id, thread_id)).fetchone()
        db.close()
        return int(row[0]), int(row[1])
    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        async with conn.transaction():
            for sql in (_REACT, _VERSIONS, _EDIT):
                await conn.execute(sql.format(p="$1"), thread_id)
        await conn.execute("VACUUM ANALYZE message")
        await conn.execute("ANALYZE message_reaction")
        await conn.execute("ANALYZE message_version")
        row = await conn.fetchrow(count_sql.format(p="$1"), thread_id)
        return (0, 0) if row is None else (int(row[0]), int(row[1]))
    finally:
        await conn.close()


async def timed_pair(calls: Sequence[tuple[Callable[[], Awaitable[object]],
                                           Callable[[], Awaitable[object]]]],
                     ) -> tuple[list[float], list[float]]:
    """Each pair (plain, rich) timed back to back, so both see the same conditions."""
    for pair in calls[:5]:  # warm up: plans, caches
        for call in pair:
            await call()
    samples: tuple[list[float], list[float]] = ([], [])
    for pair in calls:
        for call, kept in zip(pair, samples, strict=True):
            begin = time.perf_counter()
            await call()
            kept.append((time.perf_counter() - begin) * 1000)
    return samples


async def bench(db: str, count: int, pages: int, workdir: Path) -> bool:
    mode = "embedded" if db == "sqlite" else "mosquitto"
    async with (running_stack(mode, workdir) as stack,
                httpx.AsyncClient(base_url=f"http://{stack.settings.http}", timeout=60) as http):
        owner, peer = await register(http), await register(http)
        plain = await create_group(http, owner, peer)
        rich = await create_group(http, owner, peer)
        began = time.perf_counter()
        await fill(stack, plain, peer.user_id, count, seed=12, prefix="hp")
        await fill(stack, rich, peer.user_id, count, seed=12, prefix="hr")
        reactions, edits = await decorate(stack, rich)
        filled = time.perf_counter() - began
        rng = random.Random(56)  # noqa: S311  # repeatable pages, not secrets
        deep = [rng.randint(PAGE + 1, count) for _ in range(pages)]
        reader = peer.user_id  # the sender: pages hold their own messages, so status is read

        def page(thread_id: str, before: int | None) -> Callable[[], Awaitable[object]]:
            return lambda: history.history(reader, thread_id, after_seq=None,
                                           before_seq=before, limit=PAGE)

        async with open_database(stack.settings):
            sample = await history.history(reader, rich, after_seq=None, before_seq=None,
                                           limit=PAGE)
            if len(sample) != PAGE:
                raise RuntimeError(f"a page of {len(sample)} entries, not {PAGE}")
            rows = [
                ("newest page", await timed_pair(
                    [(page(plain, None), page(rich, None))] * max(pages // 2, 50))),
                ("deep page (random)", await timed_pair(
                    [(page(plain, b), page(rich, b)) for b in deep])),
            ]
    lines = [f"\n== {db}: 2 threads of {count:,} messages (filled in {filled:.1f} s); rich: "
             f"{reactions:,} reactions, {edits:,} edited messages; {PAGE} entries a page",
             f"  {'':<20}{'plain p50':>10}{'p99':>8}{'rich p50':>10}{'p99':>8}"
             f"{'ratio p50':>11}{'p99':>7}{'pages':>7}"]
    ok = True
    for label, (base, with_state) in rows:
        r50 = percentile(with_state, 50) / percentile(base, 50)
        r99 = percentile(with_state, 99) / percentile(base, 99)
        ok = ok and r50 <= RATIO_TARGET and r99 <= RATIO_TARGET
        lines.append(f"  {label:<20}{percentile(base, 50):>10.2f}{percentile(base, 99):>8.2f}"
                     f"{percentile(with_state, 50):>10.2f}{percentile(with_state, 99):>8.2f}"
                     f"{r50:>10.2f}x{r99:>6.2f}x{len(base):>7}")
    lines.append(f"  rich/plain <= {RATIO_TARGET:.0f}x at p50 and p99: {'PASS' if ok else 'FAIL'}")
    print("\n".join(lines), flush=True)  # noqa: T201
    return ok


async def main(argv: Sequence[str] | None = None) -> int:
    parser = db_parser(__doc__)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--pages", type=int, default=200, help="deep pages timed per thread")
    args = parser.parse_args(argv)
    if not args.child:
        print_header()
    if args.db == "both":
        return await each_database(__file__, ["--messages", str(args.messages),
                                              "--pages", str(args.pages)])
    with tempfile.TemporaryDirectory(prefix="history-bench-") as tmp:
        return 0 if await bench(args.db, args.messages, args.pages, Path(tmp)) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

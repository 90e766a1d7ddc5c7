"""Message search (docs/design.md section 9): substrings of message bodies in any script, only
in what the searcher may read, newest first.

What may be read is the rule of `models.message.visible_range`, applied to every thread at once
for the global search: a current member from their join (everything under `shared` visibility),
a former member the same start up to the entry of their leaving; nothing of a thread they were
never in. Only `kind = 'message'` entries are found, and never an unsent one (its body is NULL).

The index (models/migrations/0006_message_search.py): on SQLite, FTS5 with the trigram
tokenizer, queried as one quoted phrase (so `"`, `*`, `NEAR(`, `OR` are plain text); on
PostgreSQL, `ILIKE` served by a `pg_trgm` GIN index (`%`, `_` and `\\` escaped). Both fold the
case of ASCII letters (and SQLite's trigrams fold other scripts too). A trigram index cannot
serve fewer than 3 characters: a thread search then scans that thread's visible range with
LIKE; the global search refuses them (1001), as it would scan every readable thread.

PostgreSQL speed (bench/search_bench.py, p99 <= 100 ms at 1,000,000 messages): pg_trgm makes
the trigrams of each word apart, so "и t" asks the index for every body with a word ending in и
and one starting with t (most of the thread, each row then re-read and re-matched). The index is
therefore on `translate(body, ' ', 'ǂ')` (WORD_JOIN, a letter to pg_trgm: trigrams span the
spaces); the statement states that condition, implied by the real `body ILIKE`, which stays as
the exact match. And a search first walks the newest RECENT_WINDOW entries, by (thread_id, seq)
for a thread, by (created_at, id) across threads: a common text fills its page there at once,
where the index would hand a sort every match; the index serves only the rest of the page,
below the walk. These statements are planned for their parameters (`_custom_plans`).
Indexes (PostgreSQL): `message_body_words_trgm` and `message_created_at_id`, migration 0007.

Order and cursors: a thread search is by seq, paged with `before_seq`. The global search is
newest first, paged with `before_id` (the last message id of the previous page): by insertion
order on SQLite (its rowid, which the FTS index walks backwards), by `(created_at, id)` on
PostgreSQL. This module reads only and returns rows: the use cases shape them for the wire.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from contract.content import POLL
from contract.errors import InvalidParameterError
from models.message import MESSAGE_TYPES, EntryKind, Message, Visible, visible_range
from models.sqldialect import SqlDialect
from models.thread import HistoryVisibility, Member, PastMember, Thread
from models.user import check_id_ref, has_bad_chars

QUERY_MAX = 200
TRIGRAM_MIN = 3  # shorter queries cannot use a trigram index
# A shorter query walks the thread's entries instead: each request walks at most this many, so
# a rare 1-character text in a huge thread costs one bounded scan per page, never the thread.
SHORT_SCAN_WINDOW = 10_000
# A search of 3 characters or more (PostgreSQL) walks this many newest entries before the index.
RECENT_WINDOW = 5_000
# The letter standing for a space in the PostgreSQL index expression (see the docstring); the
# index is `gin (translate(body, ' ', 'ǂ') gin_trgm_ops) WHERE kind = 'message'`.
WORD_JOIN = "\u01c2"
# What `type=` may name: the types a client sends, and polls (their body is the question).
SEARCHABLE_TYPES = (*MESSAGE_TYPES, POLL)
LIMIT_DEFAULT = 20
LIMIT_MAX = 100
EPOCH_MS_MAX = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, the last datetime Python has
_NO_END = 2**62  # the upper seq bound of a current member (no end)


@dataclass(frozen=True)
class SearchQuery:
    """What to look for: `text` (a substring), and the optional filters."""

    text: str
    sender_id: str | None = None
    since_ms: int | None = None  # created at or after (epoch ms)
    until_ms: int | None = None  # created at or before (epoch ms)
    type: str | None = None
    limit: int = LIMIT_DEFAULT


def check_query(query: SearchQuery) -> str:
    """The stripped search text; InvalidParameterError (1001) for anything unusable."""
    # A NUL ends a LIKE pattern early in SQLite; no body holds a control character worth finding.
    if has_bad_chars(query.text):
        raise InvalidParameterError("q must not contain control characters")
    text = query.text.strip()
    if not text:
        raise InvalidParameterError("q (the text to search for) is required")
    if len(text) > QUERY_MAX:
        raise InvalidParameterError(f"q must be at most {QUERY_MAX} characters")
    if query.type is not None and query.type not in SEARCHABLE_TYPES:
        raise InvalidParameterError(f"type must be one of {', '.join(SEARCHABLE_TYPES)}")
    if query.sender_id is not None:
        check_id_ref(query.sender_id, "sender_id")
    if not 1 <= query.limit <= LIMIT_MAX:
        raise InvalidParameterError(f"limit must be at least 1 and at most {LIMIT_MAX}")
    for name, ms in (("from", query.since_ms), ("to", query.until_ms)):
        if ms is not None and not 0 <= ms <= EPOCH_MS_MAX:
            raise InvalidParameterError(f"{name} must be epoch milliseconds, 0 to {EPOCH_MS_MAX}")
    return text


def _moment(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _phrase(text: str) -> str:
    """One FTS5 phrase: its operators and column filters become plain text."""
    return '"' + text.replace('"', '""') + '"'


class _Sql:
    """One search statement as it is built: conditions on `m` (the message) and parameters."""

    def __init__(self, d: SqlDialect) -> None:
        self.d = d
        # An unsent message has a NULL body, so LIKE never finds it; `deleted` says it outright.
        self.where: list[str] = [f"m.kind = '{EntryKind.MESSAGE.value}'", "NOT m.deleted"]

    def param(self, value: Any) -> str:
        self.d.params.append(value)
        return self.d.numbered(len(self.d.params))

    def filters(self, query: SearchQuery) -> None:
        if query.sender_id is not None:
            self.where.append(f"m.sender_id = {self.param(query.sender_id)}")
        if query.type is not None:
            self.where.append(f"m.type = {self.param(query.type)}")
        if query.since_ms is not None:
            self.where.append(f"m.created_at >= {self.param(_moment(query.since_ms))}")
        if query.until_ms is not None:
            self.where.append(f"m.created_at <= {self.param(_moment(query.until_ms))}")


def _statement(s: _Sql, text: str, order: str, limit: int, *, fts: bool,
               indexed: bool = False, source: str = "message m") -> str:
    """`indexed` (PostgreSQL): add the condition the trigram index serves; without it the
    statement can only walk (thread_id, seq) or scan `source`."""
    if fts:  # SQLite, 3 characters or more: walk the trigram index newest first
        s.where.append(f"message_fts MATCH {s.param(_phrase(text))}")
        source = "message_fts JOIN message m ON m.rowid = message_fts.rowid"
        order = "message_fts.rowid DESC"
    else:
        if s.d.postgres:
            pattern = s.param(_like(text))
            if indexed:  # a superset of the exact match below: the same map on both sides
                s.where.append(f"translate(m.body, ' ', '{WORD_JOIN}') ILIKE "
                               f"translate({pattern}, ' ', '{WORD_JOIN}') ESCAPE '\\'")
            s.where.append(f"m.body ILIKE {pattern} ESCAPE '\\'")
        else:  # SQLite's LIKE folds ASCII case, as the trigram index does
            s.where.append(f"m.body LIKE {s.param(_like(text))} ESCAPE '\\'")
    return (f"SELECT m.id FROM {source} WHERE {' AND '.join(s.where)} "  # noqa: S608
            f"ORDER BY {order} LIMIT {s.param(limit + 1)}")  # one more: is there a next page?


@dataclass(frozen=True)
class Hits:
    """One page of matches, newest first; `more`: another page follows."""

    messages: list[Message]
    more: bool
    # A short query's page that stopped at its scan window: the before_seq to go on from.
    resume_before_seq: int | None = None


async def _ids(sql: str, params: list[Any], conn: BaseDBAsyncClient | None = None) -> list[str]:
    _, rows = await (conn or connections.get("default")).execute_query(sql, params)
    return [str(next(iter(row))) for row in rows]


@asynccontextmanager
async def _custom_plans() -> AsyncIterator[BaseDBAsyncClient]:
    """A PostgreSQL connection that plans each statement for its parameters: the pool forces
    generic plans (models/db.py), and a search's best plan depends on the text (a generic one
    ANDs the trigram matches with a bitmap of the whole thread). SET LOCAL ends with the
    transaction, so the pooled connection goes back unchanged."""
    async with in_transaction() as conn:
        await conn.execute_script("SET LOCAL plan_cache_mode = force_custom_plan")
        yield conn


async def _hits(ids: list[str], limit: int) -> Hits:
    """The messages of `ids` (newest first, one more than `limit` if there is a next page)."""
    found = {m.id: m for m in await Message.filter(id__in=ids[:limit])} if ids else {}
    return Hits([found[i] for i in ids[:limit] if i in found], len(ids) > limit)


async def _run(sql: str, params: list[Any], limit: int) -> Hits:
    return await _hits(await _ids(sql, params), limit)


def _thread_sql(thread_id: str, visible: Visible, before_seq: int | None,
                query: SearchQuery) -> _Sql:
    """A thread search's statement so far: the thread, what the user may read, the page, the
    filters."""
    s = _Sql(SqlDialect(connections.get("default")))
    s.where += [f"m.thread_id = {s.param(thread_id)}", f"m.seq >= {s.param(visible.low)}"]
    if visible.high is not None:
        s.where.append(f"m.seq <= {s.param(visible.high)}")
    if before_seq is not None:
        s.where.append(f"m.seq < {s.param(before_seq)}")
    s.filters(query)
    return s


async def _top_seq(thread_id: str, visible: Visible, before_seq: int | None) -> int:
    """The highest seq a page may hold."""
    tops = [seq for seq in (visible.high, None if before_seq is None else before_seq - 1)
            if seq is not None]
    return min(tops) if tops else await _last_seq(thread_id)


async def search_thread(user_id: str, thread_id: str, query: SearchQuery,
                        before_seq: int | None = None) -> Hits:
    """Messages of one thread the user may read whose body holds the text, newest first.
    ThreadNotFoundError, NotAMemberError (never a member), InvalidParameterError."""
    text = check_query(query)
    visible = await visible_range(user_id, thread_id)
    s = _thread_sql(thread_id, visible, before_seq, query)
    if len(text) >= TRIGRAM_MIN:
        if s.d.postgres:
            return await _recent_first(s, thread_id, visible, before_seq, query, text)
        return await _run(_statement(s, text, "", query.limit, fts=True), s.d.params,
                          query.limit)
    resume: int | None = None
    floor = await _top_seq(thread_id, visible, before_seq) - SHORT_SCAN_WINDOW + 1
    if floor > visible.low:
        s.where.append(f"m.seq >= {s.param(floor)}")
        resume = floor
    hits = await _run(_statement(s, text, "m.seq DESC", query.limit, fts=False),
                      s.d.params, query.limit)
    return Hits(hits.messages, hits.more, resume)


async def _recent_first(s: _Sql, thread_id: str, visible: Visible, before_seq: int | None,
                        query: SearchQuery, text: str) -> Hits:
    """PostgreSQL, 3 characters or more: walk the newest RECENT_WINDOW entries by (thread_id,
    seq) (no index condition, so no plan can hand a sort every match of the thread), then the
    rest of the page from the trigram index below them, sorted by seq (`seq + 0`: not a
    backward walk of the whole thread filtering every row)."""
    floor = await _top_seq(thread_id, visible, before_seq) - RECENT_WINDOW + 1
    recent = s
    if floor > visible.low:
        recent.where.append(f"m.seq >= {recent.param(floor)}")
    async with _custom_plans() as conn:
        ids = await _ids(_statement(recent, text, "m.seq DESC", query.limit, fts=False),
                         recent.d.params, conn)
        if len(ids) <= query.limit and floor > visible.low:
            older = _thread_sql(thread_id, visible, before_seq, query)
            older.where.append(f"m.seq < {older.param(floor)}")
            ids += await _ids(_statement(older, text, "m.seq + 0 DESC", query.limit - len(ids),
                                         fts=False, indexed=True), older.d.params, conn)
    return await _hits(ids, query.limit)


async def _last_seq(thread_id: str) -> int:
    last = await Thread.filter(id=thread_id).values_list("last_seq", flat=True)
    return cast(int, last[0]) if last else 0


async def readable_ranges(user_id: str) -> dict[str, Visible]:
    """`visible_range` of every thread the user is or was in (a current membership wins)."""
    ranges: dict[str, Visible] = {}
    pasts = await PastMember.filter(user_id=user_id).prefetch_related("thread")
    for past in pasts:
        shared = past.thread.history_visibility == HistoryVisibility.SHARED
        ranges[past.thread_id] = Visible(1 if shared else past.join_seq, past.leave_seq)
    for member in await Member.filter(user_id=user_id).prefetch_related("thread"):
        shared = member.thread.history_visibility == HistoryVisibility.SHARED
        ranges[member.thread_id] = Visible(1 if shared else member.join_seq, None)
    return ranges


def _in_ranges(s: _Sql, ranges: dict[str, Visible]) -> str:
    rows: Sequence[tuple[str, int, int]] = [
        (t, v.low, _NO_END if v.high is None else v.high) for t, v in ranges.items()]
    if s.d.postgres:
        t = s.param([r[0] for r in rows])
        lo = s.param([r[1] for r in rows])
        hi = s.param([r[2] for r in rows])
        return (f"EXISTS (SELECT 1 FROM unnest({t}::text[], {lo}::bigint[], {hi}::bigint[]) "  # noqa: S608
                "AS r(t, lo, hi) WHERE r.t = m.thread_id AND m.seq BETWEEN r.lo AND r.hi)")
    # One JSON parameter, whatever the number of threads (SQLite caps the parameters).
    return ("EXISTS (SELECT 1 FROM json_each(" + s.param(json.dumps(rows)) + ") AS r "  # noqa: S608
            "WHERE json_extract(r.value, '$[0]') = m.thread_id AND m.seq BETWEEN "
            "json_extract(r.value, '$[1]') AND json_extract(r.value, '$[2]'))")


async def search_all(user_id: str, query: SearchQuery,
                     before_id: str | None = None) -> Hits:
    """Messages of every thread the user may read whose body holds the text, newest first;
    after `before_id` (a message of an earlier page) if given. InvalidParameterError."""
    text = check_query(query)
    if len(text) < TRIGRAM_MIN:
        raise InvalidParameterError(f"q must be at least {TRIGRAM_MIN} characters")
    readable = await readable_ranges(user_id)
    cursor: Message | None = None
    if before_id is not None:
        check_id_ref(before_id, "before_id")
        cursor = await Message.get_or_none(id=before_id)
        seen = readable.get(cursor.thread_id) if cursor is not None else None
        if cursor is None or seen is None or cursor.seq < seen.low or (
                seen.high is not None and cursor.seq > seen.high):
            raise InvalidParameterError("before_id must be a message of an earlier page")
    if not readable:
        return Hits([], more=False)

    def base(below: tuple[Any, str] | None = None) -> _Sql:
        """The statement so far: after the cursor (and below `below`), what the user may read,
        the filters."""
        s = _Sql(SqlDialect(connections.get("default")))
        for bound in (b for b in (cursor and (cursor.created_at, cursor.id), below) if b):
            if s.d.postgres:
                s.where.append(f"(m.created_at, m.id) < ({s.param(bound[0])}, "
                               f"{s.param(bound[1])})")
            else:  # the FTS index's order: insertion (rowid)
                s.where.append("m.rowid < (SELECT rowid FROM message WHERE id = "  # noqa: S608
                               f"{s.param(bound[1])})")
        s.where.append(_in_ranges(s, readable))
        s.filters(query)
        return s

    order = "m.created_at DESC, m.id DESC"
    s = base()
    if not s.d.postgres:
        return await _run(_statement(s, text, order, query.limit, fts=True), s.d.params,
                          query.limit)
    # As a thread search: the newest RECENT_WINDOW entries first, walked by the (created_at, id)
    # index, then the trigram index below them.
    after, params = "", []
    if cursor is not None:
        after, params = "WHERE (x.created_at, x.id) < ($1, $2) ", [cursor.created_at, cursor.id]
    walk = f"SELECT * FROM message x {after}ORDER BY x.created_at DESC, x.id DESC"  # noqa: S608
    async with _custom_plans() as conn:
        ids = await _ids(_statement(s, text, order, query.limit, fts=False,
                                    source=f"({walk} LIMIT {RECENT_WINDOW}) m"),
                         s.d.params, conn)  # the cursor's are $1 and $2 there too
        if len(ids) <= query.limit:
            _, rows = await conn.execute_query(
                walk.replace("*", "x.created_at, x.id", 1) + f" OFFSET {RECENT_WINDOW - 1} "
                "LIMIT 1", params)
            if rows:  # the walk stopped short of the oldest: the index for the rest
                older = base((rows[0]["created_at"], rows[0]["id"]))
                ids += await _ids(_statement(older, text, order, query.limit - len(ids),
                                             fts=False, indexed=True), older.d.params, conn)
    return await _hits(ids, query.limit)

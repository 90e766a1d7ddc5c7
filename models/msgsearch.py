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

Order and cursors: a thread search is by seq, paged with `before_seq`. The global search is
newest first, paged with `before_id` (the last message id of the previous page): by insertion
order on SQLite (its rowid, which the FTS index walks backwards), by `(created_at, id)` on
PostgreSQL. This module reads only and returns rows: the use cases shape them for the wire.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from tortoise import connections

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
    if query.type is not None and query.type not in MESSAGE_TYPES:
        raise InvalidParameterError(f"type must be one of {', '.join(MESSAGE_TYPES)}")
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
        self.where: list[str] = [f"m.kind = '{EntryKind.MESSAGE.value}'"]

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


def _statement(s: _Sql, text: str, order: str, limit: int, *, fts: bool) -> str:
    if fts:  # SQLite, 3 characters or more: walk the trigram index newest first
        s.where.append(f"message_fts MATCH {s.param(_phrase(text))}")
        source = "message_fts JOIN message m ON m.rowid = message_fts.rowid"
        order = "message_fts.rowid DESC"
    else:
        source = "message m"
        if s.d.postgres:
            s.where.append(f"m.body ILIKE {s.param(_like(text))} ESCAPE '\\'")
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


async def _run(sql: str, params: list[Any], limit: int) -> Hits:
    conn = connections.get("default")
    _, rows = await conn.execute_query(sql, params)
    ids = [str(next(iter(row))) for row in rows]
    found = {m.id: m for m in await Message.filter(id__in=ids[:limit])} if ids else {}
    return Hits([found[i] for i in ids[:limit] if i in found], len(ids) > limit)


async def search_thread(user_id: str, thread_id: str, query: SearchQuery,
                        before_seq: int | None = None) -> Hits:
    """Messages of one thread the user may read whose body holds the text, newest first.
    ThreadNotFoundError, NotAMemberError (never a member), InvalidParameterError."""
    text = check_query(query)
    visible = await visible_range(user_id, thread_id)
    d = SqlDialect(connections.get("default"))
    s = _Sql(d)
    s.where += [f"m.thread_id = {s.param(thread_id)}", f"m.seq >= {s.param(visible.low)}"]
    if visible.high is not None:
        s.where.append(f"m.seq <= {s.param(visible.high)}")
    if before_seq is not None:
        s.where.append(f"m.seq < {s.param(before_seq)}")
    s.filters(query)
    trigrams = len(text) >= TRIGRAM_MIN
    resume: int | None = None
    if not trigrams:
        tops = [seq for seq in (visible.high, None if before_seq is None else before_seq - 1)
                if seq is not None]
        top = min(tops) if tops else await _last_seq(thread_id)
        floor = top - SHORT_SCAN_WINDOW + 1
        if floor > visible.low:
            s.where.append(f"m.seq >= {s.param(floor)}")
            resume = floor
    # On PostgreSQL, `seq + 0` keeps the planner off a backward walk of (thread_id, seq) that
    # filters every row for a rare text: the GIN index finds the matches, a top-N sort orders them.
    order = "m.seq + 0 DESC" if d.postgres and trigrams else "m.seq DESC"
    hits = await _run(_statement(s, text, order, query.limit, fts=trigrams and not d.postgres),
                      d.params, query.limit)
    return Hits(hits.messages, hits.more, resume)


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
    d = SqlDialect(connections.get("default"))
    s = _Sql(d)
    if before_id is not None:
        check_id_ref(before_id, "before_id")
        cursor = await Message.get_or_none(id=before_id)
        seen = readable.get(cursor.thread_id) if cursor is not None else None
        if cursor is None or seen is None or cursor.seq < seen.low or (
                seen.high is not None and cursor.seq > seen.high):
            raise InvalidParameterError("before_id must be a message of an earlier page")
        if d.postgres:
            s.where.append(f"(m.created_at, m.id) < ({s.param(cursor.created_at)}, "
                           f"{s.param(cursor.id)})")
        else:
            s.where.append("m.rowid < (SELECT rowid FROM message WHERE id = "  # noqa: S608
                           f"{s.param(cursor.id)})")
    if not readable:
        return Hits([], more=False)
    s.where.append(_in_ranges(s, readable))
    s.filters(query)
    return await _run(_statement(s, text, "m.created_at DESC, m.id DESC", query.limit,
                                 fts=not d.postgres), d.params, query.limit)

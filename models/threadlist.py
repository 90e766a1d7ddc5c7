"""A user's thread list, a page at a time, and sync counts, each in ONE SQL statement whatever
the number of threads.

    list_threads(user_id, ListQuery(...)) -> [ListedThread]   (GET /api/threads, one page)
    thread_counts(user_id) -> [Counts]                         (GET /api/sync, every thread)

The list is paged by keyset: the order is (pinned desc, last_activity_at desc, thread_id), and
`after` (a thread_id) continues strictly after that thread's position for the user, which a
first small statement reads (one probe of the (thread_id, user_id) unique indexes). The page's
statement works in three steps: `page` (a CTE) picks the page from narrow rows (thread id and
the order's columns: the user's `thread_member` rows by their user_id index, joined to `thread`
by key; former threads from `thread_member_past` in a UNION ALL), ordered and LIMITed; then,
for those rows alone, it reads their details back by key, counts unread messages and unread
mentions in correlated subqueries bounded by (thread_id, seq), and joins the newest message or
event (not an action entry: a reaction leaves the last message in place), found by walking the
unique (thread_id, seq) index back from max_seq, usually one step. So a page of 20 costs
20 counts whether the user is in 10 threads or 1,000; what grows with the number of threads is
the cheap first step (bench/threadlist_bench.py). `?unread=true` is the exception: its filter
needs every candidate's unread count before the LIMIT.

Unread = messages (not events, not unsent) from others, above the member's read_seq, that the
member may read (under `joined` history, from the entry that added them), up to the `max_seq`
reported; unread mentions are those that list the member or "@all". A message
request (Member.is_request) counts none. Written for SQLite and PostgreSQL alike: the only
differences are placeholders (`$n` / `?n`, both reusable by number), splitting a direct_key and
looking into the `mentions` JSON array. Values are always parameters, never formatted in.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient

from contract.errors import InvalidParameterError, ThreadNotFoundError
from contract.fields import ID_PATTERN
from models.clock import utcnow
from models.message import Message
from models.msgstate import ALL_MENTION
from models.sqldialect import SqlDialect
from models.thread import Thread
from models.user import has_bad_chars

QUERY_MAX = 100
PAGE_MIN, PAGE_DEFAULT, PAGE_MAX = 1, 20, 200  # GET /api/threads?limit=
_ID_RE = re.compile(ID_PATTERN)
# "@all" as a SQL string literal: a fixed text, like the column names formatted in.
_ALL_LITERAL = "'" + ALL_MENTION + "'"


@cache
def _entry_columns() -> tuple[str, ...]:
    """The newest entry's columns, each selected as `e_<column>` and turned back into a Message
    the way the ORM does (`_init_from_db`; tortoise is pinned exactly: CONTRIBUTING.md). Taken
    from the model, so a column added to `message` is carried without a change here; read once
    the ORM is set up (its foreign-key columns are only known then)."""
    return tuple(sorted(Message._meta.db_fields))


@dataclass(frozen=True)
class ListQuery:
    """GET /api/threads's filters (docs/threads.md)."""

    archived: bool = False  # archived threads too
    include_left: bool = False  # dissolved threads, and those the user left or was removed from
    unread: bool = False  # only threads with unread messages, or marked unread
    requests: bool = False  # only the message requests the user has not accepted
    q: str | None = None  # thread name, or a direct thread's peer's name, contains (any case)
    limit: int = PAGE_DEFAULT  # the page's size
    after: str | None = None  # the thread_id of the previous page's last item


@dataclass(frozen=True)
class ListedThread:
    thread_id: str
    kind: str
    name: str | None
    status: str
    membership: str  # active | left | removed
    role: str | None  # None in a former thread
    max_seq: int
    read_seq: int
    unread: int
    unread_mentions: int
    last_activity_at: datetime
    pinned: bool
    archived: bool
    marked_unread: bool
    muted_until: datetime | None  # the member's own, None once passed
    recv_msg_opt: int
    last_entry: Message | None


@dataclass(frozen=True)
class Counts:
    thread_id: str
    max_seq: int
    read_seq: int
    unread: int


def check_query(q: str | None) -> str | None:
    """The search text, stripped; None for no search. InvalidParameterError if unusable."""
    if q is None:
        return None
    # A NUL would end SQLite's LIKE pattern early (see models/search.py).
    if has_bad_chars(q):
        raise InvalidParameterError("q must not contain control characters")
    q = q.strip()
    if len(q) > QUERY_MAX:
        raise InvalidParameterError(f"q must be at most {QUERY_MAX} characters")
    return q or None


def _like_pattern(q: str) -> str:
    """`%q%` with LIKE's wildcards and the escape character taken literally (ESCAPE '\\')."""
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _unread_from() -> str:
    """The member `m`'s unread messages are the seqs above this one (up to the thread's last):
    their read mark, or under `joined` history the entry before the one that added them when
    that is higher. A message request counts none: its bound is the last seq itself."""
    return ("CASE WHEN m.is_request THEN t.last_seq WHEN t.history_visibility = 'joined' "
            "AND m.join_seq - 1 > m.read_seq THEN m.join_seq - 1 ELSE m.read_seq END")


def _count(d: SqlDialect, row: str, *, mentions: bool) -> str:
    """Row `row`'s unread count (or of those, mentions of the user or of "@all"), bounded by the
    (thread_id, seq) index: messages from others, not unsent, with seqs in
    (row.unread_from, row.max_seq]."""
    user = d.numbered(1)
    extra = (f" AND ({d.mentions('x.mentions', user)} OR "
             f"{d.mentions('x.mentions', _ALL_LITERAL)})") if mentions else ""
    return (f"CASE WHEN {row}.unread_from >= {row}.max_seq THEN 0 ELSE ("  # noqa: S608
            f"SELECT COUNT(*) FROM message x WHERE x.thread_id = {row}.thread_id "
            f"AND x.seq > {row}.unread_from AND x.seq <= {row}.max_seq AND x.kind = 'message' "
            f"AND NOT x.deleted AND (x.sender_id IS NULL OR x.sender_id <> {user}){extra}) END")


def _select_entry() -> str:
    return ", ".join(f"e.{c} AS e_{c}" for c in _entry_columns())


def _search(d: SqlDialect, q: str | None) -> tuple[str, str]:
    """The join and condition of `?q=`: the thread's name, or a direct thread's peer's name."""
    if q is None:
        return "", ""
    first, second = d.direct_user("t.direct_key", 1), d.direct_user("t.direct_key", 2)
    join = (f" LEFT JOIN user_account pu ON t.direct_key IS NOT NULL AND pu.id = "
            f"CASE WHEN {first} = {d.numbered(1)} THEN {second} ELSE {first} END")
    pattern = d.numbered(2)
    where = (f" AND (UPPER(t.name) LIKE UPPER({pattern}) ESCAPE '\\' "
             f"OR UPPER(pu.name) LIKE UPPER({pattern}) ESCAPE '\\')")
    return join, where


# The list's order; `after` continues strictly after a position in it (keyset paging).
_ORDER = "ORDER BY {0}.pinned DESC, {0}.activity_at DESC, {0}.thread_id"


def _candidates(d: SqlDialect, query: ListQuery, q: str | None) -> str:
    """The threads the filters let through, as narrow rows: (thread_id, pinned, activity_at,
    former), from the user_id index of thread_member (and of thread_member_past) joined to
    `thread` by key. With `?unread=true` also what its filter needs (marked_unread,
    unread_from, max_seq); a former thread has nothing unread, so it never passes that one."""
    user = d.numbered(1)
    join, search = _search(d, q)
    if query.requests:
        scope = "m.is_request AND t.kind = 'direct'"
    else:
        scope = "NOT m.is_request"
        if not query.archived:
            scope += " AND NOT m.archived"
        if not query.include_left:
            scope += " AND t.status = 'active'"
    for_unread = (f", m.marked_unread AS marked_unread, {_unread_from()} AS unread_from, "
                  "t.last_seq AS max_seq") if query.unread else ""
    current = (
        "SELECT m.thread_id AS thread_id, m.pinned AS pinned, "  # noqa: S608
        f"t.last_activity_at AS activity_at, FALSE AS former{for_unread} "
        f"FROM thread_member m JOIN thread t ON t.id = m.thread_id{join} "
        f"WHERE m.user_id = {user} AND {scope}{search}"
    )
    if not _with_former(query):
        return current
    return (f"{current} UNION ALL SELECT p.thread_id, FALSE, p.left_at, TRUE "  # noqa: S608
            f"FROM thread_member_past p JOIN thread t ON t.id = p.thread_id{join} "
            f"WHERE p.user_id = {user}{search} AND NOT EXISTS (SELECT 1 FROM thread_member c "
            f"WHERE c.thread_id = p.thread_id AND c.user_id = {user})")


def _with_former(query: ListQuery) -> bool:
    return query.include_left and not query.requests and not query.unread


def _after(d: SqlDialect, first: int) -> str:
    """Strictly after the position (pinned, activity_at, thread_id) in parameters `first`..+2."""
    pinned, at, thread = d.numbered(first), d.numbered(first + 1), d.numbered(first + 2)
    return (f"(c.pinned < {pinned} OR (c.pinned = {pinned} AND (c.activity_at < {at} "
            f"OR (c.activity_at = {at} AND c.thread_id > {thread}))))")


def _details(d: SqlDialect, query: ListQuery) -> str:
    """The page's rows (`g`) with everything a list item shows, from the membership (or the
    former membership) and the thread: one probe of each unique index per row."""
    user = d.numbered(1)
    current = (
        "SELECT m.thread_id AS thread_id, t.kind AS kind, t.name AS name, "  # noqa: S608
        "t.status AS status, 'active' AS membership, m.role AS role, t.last_seq AS max_seq, "
        f"m.read_seq AS read_seq, {_unread_from()} AS unread_from, "
        "g.activity_at AS activity_at, g.pinned AS pinned, m.archived AS archived, "
        "m.marked_unread AS marked_unread, m.notify_muted_until AS muted_until, "
        "m.recv_msg_opt AS recv_msg_opt FROM page g "
        f"JOIN thread_member m ON m.thread_id = g.thread_id AND m.user_id = {user} "
        "JOIN thread t ON t.id = g.thread_id"
    )
    if not _with_former(query):
        return current
    # A former thread: seen up to the leaving (max_seq = unread_from: nothing unread).
    return (f"{current} WHERE NOT g.former UNION ALL "  # noqa: S608
            "SELECT p.thread_id, t.kind, t.name, t.status, p.status, NULL, p.leave_seq, "
            "p.leave_seq, p.leave_seq, g.activity_at, g.pinned, FALSE, FALSE, NULL, 0 "
            f"FROM page g JOIN thread_member_past p ON p.thread_id = g.thread_id "
            f"AND p.user_id = {user} JOIN thread t ON t.id = g.thread_id WHERE g.former")


def _list_sql(d: SqlDialect, query: ListQuery, q: str | None, cursor_at: int | None,
              limit_at: int) -> str:
    """One statement in three steps. `page`: the candidates' narrow rows, ordered and LIMITed
    (after the cursor, if any). Then, for the page's rows alone, their details, their unread
    and mention counts and their newest entry. With `?unread=true` the filter needs every
    candidate's unread count before the LIMIT, so that count is computed for all of them (the
    rest still only for the page)."""
    wanted = [_after(d, cursor_at)] if cursor_at is not None else []
    if query.unread:
        wanted.append(f"(c.marked_unread OR {_count(d, 'c', mentions=False)} > 0)")
    where = f" WHERE {' AND '.join(wanted)}" if wanted else ""
    page = (f"SELECT c.thread_id, c.pinned, c.activity_at, c.former "  # noqa: S608
            f"FROM ({_candidates(d, query, q)}) AS c{where} {_ORDER.format('c')} "
            f"LIMIT {d.numbered(limit_at)}")
    return (
        f"WITH page AS ({page}) "  # noqa: S608
        "SELECT l.thread_id, l.kind, l.name, l.status, l.membership, l.role, l.max_seq, "
        f"l.read_seq, {_count(d, 'l', mentions=False)}, {_count(d, 'l', mentions=True)}, "
        "l.activity_at, l.pinned, l.archived, l.marked_unread, l.muted_until, l.recv_msg_opt, "
        f"{_select_entry()} FROM ({_details(d, query)}) AS l "
        "LEFT JOIN message e ON e.thread_id = l.thread_id AND e.seq = ("
        "SELECT y.seq FROM message y WHERE y.thread_id = l.thread_id AND y.seq <= l.max_seq "
        "AND y.kind <> 'action' ORDER BY y.seq DESC LIMIT 1) "
        f"{_ORDER.format('l')}"
    )


def _cursor_sql(d: SqlDialect) -> str:
    """Where thread $2 stands in user $1's list: (pinned, activity_at) as stored, a current
    membership before a former one. One probe of each (thread_id, user_id) unique index."""
    user, thread = d.numbered(1), d.numbered(2)
    return (
        "SELECT k.pinned, k.activity_at FROM ("  # noqa: S608
        "SELECT 0 AS rank, m.pinned AS pinned, t.last_activity_at AS activity_at "
        "FROM thread_member m JOIN thread t ON t.id = m.thread_id "
        f"WHERE m.user_id = {user} AND m.thread_id = {thread} UNION ALL "
        "SELECT 1, FALSE, p.left_at FROM thread_member_past p "
        f"WHERE p.user_id = {user} AND p.thread_id = {thread}) AS k ORDER BY k.rank LIMIT 1"
    )


def _time(value: Any) -> datetime:
    """A timestamp column as an aware datetime: PostgreSQL gives one, SQLite the ISO text tortoise
    stored (parsed here with the C parser; tortoise's own parser cost more than the query)."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


def _entry(columns: Sequence[Any]) -> Message | None:
    """The newest entry from its `e_` columns (all NULL when the thread has no entry yet)."""
    values = dict(zip(_entry_columns(), columns, strict=True))
    if values["id"] is None:
        return None
    values["created_at"] = _time(values["created_at"])
    for name in ("mentions", "attachments", "data"):
        values[name] = _json(values[name])
    return Message._init_from_db(**values)


def _listed(row: Sequence[Any], now: datetime) -> ListedThread:
    # By position, in the SELECT's order (sqlite3.Row looks names up one by one).
    (thread_id, kind, name, status, membership, role, max_seq, read_seq, unread, mentions,
     activity_at, pinned, archived, marked_unread, muted_until, recv_msg_opt, *entry) = row
    until = _time(muted_until) if muted_until is not None else None
    return ListedThread(
        thread_id=thread_id, kind=kind, name=name, status=status, membership=membership,
        role=role, max_seq=int(max_seq), read_seq=int(read_seq), unread=int(unread),
        unread_mentions=int(mentions), last_activity_at=_time(activity_at), pinned=bool(pinned),
        archived=bool(archived), marked_unread=bool(marked_unread),
        muted_until=until if until is not None and until > now else None,
        recv_msg_opt=int(recv_msg_opt), last_entry=_entry(entry),
    )


async def _cursor(conn: BaseDBAsyncClient, d: SqlDialect, user_id: str,
                  after: str) -> list[Any]:
    """The position of `after` in the user's list, as the parameters of `_after`. The values go
    back to the database as it gave them (SQLite's timestamp text compares as stored)."""
    if not _ID_RE.fullmatch(after):
        raise InvalidParameterError("after must be the thread_id of a listed thread")
    _, rows = await conn.execute_query(_cursor_sql(d), [user_id, after])
    if not rows:
        raise InvalidParameterError(f"after: {after} is not one of your threads")
    pinned, activity_at = tuple(rows[0])
    return [pinned, activity_at, after]


async def list_threads(user_id: str, query: ListQuery) -> list[ListedThread]:
    """A page of the user's threads as GET /api/threads lists them: pinned first, then newest
    activity; `query.limit` of them, after `query.after` if given. One statement, two with
    `after` (its position first)."""
    q = check_query(query.q)
    if not PAGE_MIN <= query.limit <= PAGE_MAX:
        raise InvalidParameterError(f"limit must be at least {PAGE_MIN} and at most {PAGE_MAX}")
    conn = connections.get("default")
    d = SqlDialect(conn)
    params: list[Any] = [user_id] if q is None else [user_id, _like_pattern(q)]
    cursor_at = None
    if query.after:
        cursor_at = len(params) + 1
        params += await _cursor(conn, d, user_id, query.after)
    params.append(query.limit)
    _, rows = await conn.execute_query(_list_sql(d, query, q, cursor_at, len(params)), params)
    now = utcnow()
    return [_listed(tuple(row), now) for row in rows]


async def thread_counts(user_id: str) -> list[Counts]:
    """Per current thread: max_seq, read_seq and unread, newest activity first (every thread:
    GET /api/sync is the catch-up path, one statement)."""
    conn = connections.get("default")
    d = SqlDialect(conn)
    sql = (f"SELECT s.thread_id, s.max_seq, s.read_seq, {_count(d, 's', mentions=False)} "  # noqa: S608
           "FROM (SELECT m.thread_id AS thread_id, t.last_seq AS max_seq, "
           f"m.read_seq AS read_seq, {_unread_from()} AS unread_from, "
           "t.last_activity_at AS activity_at "
           "FROM thread_member m JOIN thread t ON t.id = m.thread_id "
           f"WHERE m.user_id = {d.numbered(1)}) AS s ORDER BY s.activity_at DESC, s.thread_id")
    _, rows = await conn.execute_query(sql, [user_id])
    return [Counts(str(r[0]), int(r[1]), int(r[2]), int(r[3])) for r in rows]


async def direct_thread_id(user_id: str, other_id: str) -> str:
    """The id of the user's direct thread with `other_id`; ThreadNotFoundError if none."""
    key = ":".join(sorted((user_id, other_id)))
    found = await Thread.filter(direct_key=key, members__user_id=user_id).values_list(
        "id", flat=True)
    if user_id == other_id or not found:
        raise ThreadNotFoundError(f"with {other_id}")
    return str(found[0])

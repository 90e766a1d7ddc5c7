"""A user's thread list and sync counts, each in ONE SQL statement whatever the number of threads.

    list_threads(user_id, ListQuery(...)) -> [ListedThread]   (GET /api/threads)
    thread_counts(user_id) -> [Counts]                         (GET /api/sync)

The statement joins the user's `thread_member` rows to their `thread` and to the thread's newest
entry (`message` at `thread.last_seq`, one probe of the unique (thread_id, seq) index), and counts
unread messages and unread mentions in correlated subqueries bounded by (thread_id, seq), so each
costs the unread rows of that thread only. Former threads (`thread_member_past`) are a second
branch of a UNION ALL. The ORM would run a COUNT per thread; a user in 1,000 threads paid for
1,000 round trips (bench/threadlist_bench.py measures this statement).

Unread = messages (not events) from others, above the member's read_seq, that the member may read
(under `joined` history, from the entry that added them), up to the `max_seq` reported. A message
request (Member.is_request) counts none. Written for SQLite and PostgreSQL alike: the only
differences are placeholders (`$n` / `?n`, both reusable by number), splitting a direct_key and
looking into the `mentions` JSON array. Values are always parameters, never formatted in.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient

from contract.errors import InvalidParameterError, ThreadNotFoundError
from models.clock import utcnow
from models.message import Message
from models.thread import Thread
from models.user import has_bad_chars

QUERY_MAX = 100


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


class _Dialect:
    def __init__(self, conn: BaseDBAsyncClient) -> None:
        self.postgres = conn.capabilities.dialect == "postgres"

    def param(self, n: int) -> str:
        return f"${n}" if self.postgres else f"?{n}"

    def direct_user(self, column: str, part: int) -> str:
        if self.postgres:
            return f"split_part({column}, ':', {part})"
        if part == 1:
            return f"substr({column}, 1, instr({column}, ':') - 1)"
        return f"substr({column}, instr({column}, ':') + 1)"

    def mentions(self, column: str, user: str) -> str:
        if self.postgres:
            return f"{column} ? {user}"  # jsonb: the array holds that string
        return f"EXISTS (SELECT 1 FROM json_each({column}) WHERE value = {user})"  # noqa: S608


def _unread(d: _Dialect, *, mentions: bool) -> str:
    """The member `m`'s unread count in thread `t` (or of those, mentions), bounded by the
    (thread_id, seq) index: seqs above max(read_seq, first readable - 1), up to last_seq."""
    user = d.param(1)
    low = ("CASE WHEN t.history_visibility = 'joined' AND m.join_seq - 1 > m.read_seq "
           "THEN m.join_seq - 1 ELSE m.read_seq END")
    extra = f" AND {d.mentions('x.mentions', user)}" if mentions else ""
    return (f"CASE WHEN m.is_request OR m.read_seq >= t.last_seq THEN 0 ELSE ("  # noqa: S608
            f"SELECT COUNT(*) FROM message x WHERE x.thread_id = m.thread_id "
            f"AND x.seq > {low} AND x.seq <= t.last_seq AND x.kind = 'message' "
            f"AND (x.sender_id IS NULL OR x.sender_id <> {user}){extra}) END")


def _select_entry() -> str:
    return ", ".join(f"e.{c} AS e_{c}" for c in _entry_columns())


def _search(d: _Dialect, q: str | None) -> tuple[str, str]:
    """The join and condition of `?q=`: the thread's name, or a direct thread's peer's name."""
    if q is None:
        return "", ""
    first, second = d.direct_user("t.direct_key", 1), d.direct_user("t.direct_key", 2)
    join = (f" LEFT JOIN user_account pu ON t.direct_key IS NOT NULL AND pu.id = "
            f"CASE WHEN {first} = {d.param(1)} THEN {second} ELSE {first} END")
    pattern = d.param(2)
    where = (f" AND (UPPER(t.name) LIKE UPPER({pattern}) ESCAPE '\\' "
             f"OR UPPER(pu.name) LIKE UPPER({pattern}) ESCAPE '\\')")
    return join, where


def _list_sql(d: _Dialect, query: ListQuery, q: str | None) -> str:
    user = d.param(1)
    join, search = _search(d, q)
    if query.requests:
        scope = "m.is_request AND t.kind = 'direct'"
    else:
        scope = "NOT m.is_request"
        if not query.archived:
            scope += " AND NOT m.archived"
        if not query.include_left:
            scope += " AND t.status = 'active'"
    current = (
        "SELECT m.thread_id AS thread_id, t.kind AS kind, t.name AS name, t.status AS status, "  # noqa: S608
        "'active' AS membership, m.role AS role, t.last_seq AS max_seq, m.read_seq AS read_seq, "
        f"{_unread(d, mentions=False)} AS unread, {_unread(d, mentions=True)} AS unread_mentions, "
        "t.last_activity_at AS activity_at, m.pinned AS pinned, m.archived AS archived, "
        "m.marked_unread AS marked_unread, m.notify_muted_until AS muted_until, "
        f"m.recv_msg_opt AS recv_msg_opt, {_select_entry()} "
        "FROM thread_member m JOIN thread t ON t.id = m.thread_id "
        f"LEFT JOIN message e ON e.thread_id = t.id AND e.seq = t.last_seq{join} "
        f"WHERE m.user_id = {user} AND {scope}{search}"
    )
    parts = [current]
    if query.include_left and not query.requests:
        parts.append(
            "SELECT p.thread_id, t.kind, t.name, t.status, p.status, NULL, p.leave_seq, "  # noqa: S608
            "p.leave_seq, 0, 0, p.left_at, FALSE, FALSE, FALSE, NULL, 0, "
            f"{_select_entry()} "
            "FROM thread_member_past p JOIN thread t ON t.id = p.thread_id "
            f"LEFT JOIN message e ON e.thread_id = t.id AND e.seq = p.leave_seq{join} "
            f"WHERE p.user_id = {user}{search} AND NOT EXISTS (SELECT 1 FROM thread_member c "
            f"WHERE c.thread_id = p.thread_id AND c.user_id = {user})"
        )
    wanted = " WHERE l.unread > 0 OR l.marked_unread" if query.unread else ""
    return (f"SELECT * FROM ({' UNION ALL '.join(parts)}) AS l{wanted} "  # noqa: S608
            "ORDER BY l.pinned DESC, l.activity_at DESC, l.thread_id")


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


async def list_threads(user_id: str, query: ListQuery) -> list[ListedThread]:
    """The user's threads as GET /api/threads lists them: pinned first, then newest activity."""
    q = check_query(query.q)
    conn = connections.get("default")
    d = _Dialect(conn)
    params: list[Any] = [user_id] if q is None else [user_id, _like_pattern(q)]
    _, rows = await conn.execute_query(_list_sql(d, query, q), params)
    now = utcnow()
    return [_listed(tuple(row), now) for row in rows]


async def thread_counts(user_id: str) -> list[Counts]:
    """Per current thread: max_seq, read_seq and unread, newest activity first."""
    conn = connections.get("default")
    d = _Dialect(conn)
    sql = (f"SELECT m.thread_id, t.last_seq, m.read_seq, {_unread(d, mentions=False)} "  # noqa: S608
           "FROM thread_member m JOIN thread t ON t.id = m.thread_id "
           f"WHERE m.user_id = {d.param(1)} ORDER BY t.last_activity_at DESC, m.thread_id")
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

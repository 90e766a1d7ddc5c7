"""Who gets a push for a burst of one thread, and a user's push targets (docs/push.md), as
queries: a burst costs the same few statements whether it concerns one member or thousands.

    register_target / list_targets / delete_target   the routes' rows
    candidates(thread_id, up_to)   members who may be pushed: not the thread's `recv_msg_opt` 2,
                                   not online, with a target of a live session (ONE statement)
    older_unread(thread_id, before, members)  their unread messages before the burst (ONE)
    live_targets(user_ids)          their targets of live sessions (one per 500 users)
    record_success / record_failure / drop_targets   what a send did to its target

Deciding which of the burst's messages concern a candidate (from others, above their read
mark, a mention when muted) is done on the rows in actions/push.py: the burst is in memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tortoise import connections
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from contract.errors import InvalidParameterError, NotFoundError
from contract.push import TARGETS_PER_SESSION
from models.clock import utcnow
from models.push import PushKind, PushTarget
from models.session import LoginSession
from models.sqldialect import SqlDialect
from models.thread import RecvOpt

CHUNK = 500
ERROR_MAX = 500
# Unread counts stop here ("999+" on a badge): a member who never reads costs at most this many
# index steps per push, not the thread's whole history.
COUNT_CAP = 999


@dataclass(frozen=True)
class Candidate:
    user_id: str
    unread_from: int  # their unread messages are the seqs above this one
    muted: bool  # recv_msg_opt 1, or notifications muted until a moment still ahead


async def register_target(user_id: str, session_id: str, kind: str, endpoint: str,
                          keys: dict[str, str]) -> PushTarget:
    """Add a target to a session, or renew it (same endpoint: new keys, failures forgotten);
    at most TARGETS_PER_SESSION per session (1001)."""
    async with in_transaction() as conn:
        # The session's row serialises concurrent registrations, so the limit holds.
        session = await LoginSession.filter(id=session_id, user_id=user_id).using_db(
            conn).select_for_update().first()
        if session is None or session.ended_at is not None:  # a bot's API token has none
            raise InvalidParameterError("push targets belong to a login session; this token "
                                        "has no live one")
        existing = await PushTarget.filter(session_id=session_id, endpoint=endpoint).using_db(
            conn).first()
        if existing is not None:
            existing.kind, existing.keys = PushKind(kind), keys
            existing.failures, existing.last_error = 0, None
            await existing.save(using_db=conn,
                                update_fields=["kind", "keys", "failures", "last_error"])
            return existing
        if await PushTarget.filter(session_id=session_id).using_db(
                conn).count() >= TARGETS_PER_SESSION:
            raise InvalidParameterError(
                f"a session has at most {TARGETS_PER_SESSION} push targets")
        return await PushTarget.create(user_id=user_id, session_id=session_id,
                                       kind=PushKind(kind), endpoint=endpoint, keys=keys,
                                       using_db=conn)


async def list_targets(user_id: str) -> list[PushTarget]:
    """The user's targets of every live session, oldest first."""
    return await PushTarget.filter(user_id=user_id, session__ended_at__isnull=True).order_by(
        "id")


async def delete_target(user_id: str, target_id: int) -> None:
    """Delete one of the user's own targets; another's, or none, is not found (1005)."""
    if not await PushTarget.filter(id=target_id, user_id=user_id).delete():
        raise NotFoundError("no such push target")


# Under `joined` history a member reads from the entry that added them (models/threadlist.py).
_UNREAD_FROM = ("CASE WHEN th.history_visibility = 'joined' AND m.join_seq - 1 > m.read_seq "
                "THEN m.join_seq - 1 ELSE m.read_seq END")
_LIVE_TARGET = ("EXISTS (SELECT 1 FROM push_target p JOIN login_session s ON s.id = p.session_id "
                "WHERE p.user_id = m.user_id AND s.ended_at IS NULL)")


async def candidates(thread_id: str, up_to: int) -> list[Candidate]:
    """The current members who may get a push for entries up to `up_to`: recv_msg_opt not 2,
    something unread below `up_to`, presence not online, and a target of a live session."""
    conn = connections.get("default")
    d = SqlDialect(conn)
    d.params += [thread_id, up_to]
    t, up = d.numbered(1), d.numbered(2)
    sql = (f"SELECT m.user_id, {_UNREAD_FROM} AS unread_from, m.recv_msg_opt, "  # noqa: S608
           f"m.notify_muted_until FROM thread_member m JOIN thread th ON th.id = m.thread_id "
           f"WHERE m.thread_id = {t} AND m.recv_msg_opt <> 2 AND m.read_seq < {up} "
           f"AND {_LIVE_TARGET} "
           f"AND NOT EXISTS (SELECT 1 FROM presence pr WHERE pr.user_id = m.user_id "
           f"AND pr.status = 'online')")
    rows: list[dict[str, Any]] = (await conn.execute_query(sql, d.params))[1]
    now = utcnow()
    return [Candidate(str(r["user_id"]), int(r["unread_from"]),
                      int(r["recv_msg_opt"]) == RecvOpt.NO_NOTIFICATIONS
                      or _after(r["notify_muted_until"], now)) for r in rows]


def _after(value: datetime | str | None, now: datetime) -> bool:
    """Whether a stored moment (SQLite gives text) is still ahead."""
    if value is None:
        return False
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment > now


async def older_unread(thread_id: str, before: int, members: Sequence[Candidate],
                       ) -> dict[str, int]:
    """Each member's unread messages from others with seqs in (unread_from, before): the part
    of their count that the burst (which starts at `before`) does not hold; capped."""
    behind = [m.user_id for m in members if m.unread_from < before - 1]
    counts: dict[str, int] = {}
    conn = connections.get("default")
    for start in range(0, len(behind), CHUNK):
        d = SqlDialect(conn)
        d.params += [thread_id, before]
        t, b = d.numbered(1), d.numbered(2)
        among = d.values_in("m.user_id", behind[start:start + CHUNK])
        # Counted in a subquery bounded by (thread_id, seq), one index range per member.
        sql = (f"SELECT m.user_id, (SELECT COUNT(*) FROM (SELECT 1 FROM message x "  # noqa: S608
               f"WHERE x.thread_id = m.thread_id AND x.seq > {_UNREAD_FROM} AND x.seq < {b} "
               f"AND x.kind = 'message' AND NOT x.deleted AND (x.sender_id IS NULL OR "
               f"x.sender_id <> m.user_id) LIMIT {COUNT_CAP}) c) AS n "
               f"FROM thread_member m JOIN thread th ON th.id = m.thread_id "
               f"WHERE m.thread_id = {t} AND {among}")
        rows: list[dict[str, Any]] = (await conn.execute_query(sql, d.params))[1]
        counts.update({str(r["user_id"]): int(r["n"]) for r in rows})
    return counts


async def live_targets(user_ids: Sequence[str]) -> list[PushTarget]:
    """The targets of these users' live sessions."""
    found: list[PushTarget] = []
    for start in range(0, len(user_ids), CHUNK):
        found += await PushTarget.filter(user_id__in=list(user_ids[start:start + CHUNK]),
                                         session__ended_at__isnull=True)
    return found


async def record_success(target_ids: Sequence[int], when: datetime) -> None:
    if target_ids:
        await PushTarget.filter(id__in=list(target_ids)).update(
            last_success_at=when, failures=0, last_error=None)


async def record_failure(target_id: int, error: str) -> None:
    await PushTarget.filter(id=target_id).update(
        last_error=error[:ERROR_MAX], failures=F("failures") + 1)


async def drop_targets(target_ids: Sequence[int]) -> None:
    """The push service says these subscriptions are gone."""
    if target_ids:
        await PushTarget.filter(id__in=list(target_ids)).delete()

"""Presence of each user (table): online, idle or offline, and when last seen. Fed by the
`presence` uplink op and by the will that a client sets to `{"op": "presence", "status":
"offline"}`, so a killed client goes offline too."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from tortoise import fields
from tortoise.models import Model
from tortoise.transactions import in_transaction

from contract.errors import ForbiddenError, InvalidParameterError
from models.clock import utcnow
from models.friendship import Friendship
from models.thread import Member


class PresenceStatus(StrEnum):
    ONLINE = "online"
    IDLE = "idle"
    OFFLINE = "offline"


class Presence(Model):
    user_id = fields.CharField(primary_key=True, max_length=64)
    status = fields.CharEnumField(PresenceStatus, max_length=8, default=PresenceStatus.OFFLINE)
    last_seen_at = fields.DatetimeField(null=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "presence"


@dataclass(frozen=True)
class PresenceState:
    user_id: str
    status: PresenceStatus
    last_seen_at: datetime | None
    changed: bool = False



async def set_presence(user_id: str, status: str) -> PresenceState:
    """Record a user's status; `changed` says whether watchers need to hear of it."""
    try:
        new = PresenceStatus(status)
    except ValueError as exc:
        raise InvalidParameterError("status must be online, idle or offline") from exc
    now = utcnow()
    async with in_transaction() as conn:
        row = await Presence.filter(user_id=user_id).using_db(conn).select_for_update().first()
        previous = row.status if row else PresenceStatus.OFFLINE
        # Last seen: now while connected, or the moment the user went offline.
        last_seen = now if (new != PresenceStatus.OFFLINE or previous != new) else (
            row.last_seen_at if row else None)
        if row is None:
            _ = await Presence.create(user_id=user_id, status=new, last_seen_at=last_seen,
                                      using_db=conn)
        else:
            row.status, row.last_seen_at = new, last_seen
            await row.save(using_db=conn, update_fields=["status", "last_seen_at", "updated_at"])
    return PresenceState(user_id, new, last_seen, changed=previous != new)


async def presence_audience(user_id: str) -> tuple[list[str], list[str]]:
    """Who hears a user's presence: the threads they are in (the broker fans out to the
    co-members), and the friends who share none of those threads (told on their own topic)."""
    thread_ids = [str(t) for t in await Member.filter(user_id=user_id).values_list(
        "thread_id", flat=True)]
    friends = {str(f) for f in await Friendship.filter(user_id=user_id).values_list(
        "friend_id", flat=True)}
    if friends and thread_ids:
        co_members = {str(u) for u in await Member.filter(
            thread_id__in=thread_ids, user_id__in=list(friends)).values_list("user_id", flat=True)}
        friends -= co_members
    return thread_ids, sorted(friends)


async def can_see_presence(viewer_id: str, user_id: str) -> bool:
    """Only the user, their friends and the members of a thread they are in."""
    if viewer_id == user_id:
        return True
    if await Friendship.exists(user_id=viewer_id, friend_id=user_id):
        return True
    shared = Member.filter(user_id=user_id).values_list("thread_id", flat=True)
    return await Member.exists(user_id=viewer_id, thread_id__in=list(await shared))


async def get_presence(viewer_id: str, user_id: str) -> PresenceState:
    if not await can_see_presence(viewer_id, user_id):
        raise ForbiddenError("only friends and members of a shared thread see presence")
    row = await Presence.get_or_none(user_id=user_id)
    if row is None:
        return PresenceState(user_id, PresenceStatus.OFFLINE, None)
    return PresenceState(user_id, row.status, row.last_seen_at)

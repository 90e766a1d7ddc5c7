"""The counts behind the admin figures (GET /api/admin/stats and the gauges on /metrics).

`messages_last_minute` uses the indexed `thread.last_activity_at` (set by every append) to
look only at the threads active in the last minute, then counts their messages by `created_at`
(the (thread_id, seq) index finds a thread's rows; no index on `message.created_at` exists).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from tortoise.expressions import Subquery

from models.clock import utcnow
from models.message import EntryKind, Message
from models.presence import Presence, PresenceStatus
from models.thread import Thread
from models.user import User

RECENT = timedelta(minutes=1)


@dataclass(frozen=True)
class Counts:
    online_users: int
    users: int
    threads: int
    messages: int
    messages_last_minute: int


async def counts() -> Counts:
    since = utcnow() - RECENT
    active = Subquery(Thread.filter(last_activity_at__gte=since).values("id"))
    recent = await Message.filter(
        thread_id__in=active, kind=EntryKind.MESSAGE, created_at__gte=since).count()
    return Counts(
        online_users=await Presence.filter(
            status__in=[PresenceStatus.ONLINE, PresenceStatus.IDLE]).count(),
        users=await User.filter(deleted_at=None).count(),
        threads=await Thread.all().count(),
        messages=await Message.filter(kind=EntryKind.MESSAGE).count(),
        messages_last_minute=recent,
    )

"""Push notifications (docs/push.md): who gets one for a burst of new entries, and sending it to
their devices' push targets. Called by the worker (actions/reach.py), never by the message
path."""

from __future__ import annotations

from collections.abc import Sequence

from config import Settings
from models.message import Message
from models.push import PushTarget


async def any_targets() -> bool:
    """Whether any device has a push target at all (if not, the worker skips push)."""
    return await PushTarget.exists()


async def notify(settings: Settings, thread_id: str, entries: Sequence[Message]) -> int:
    """Push `entries` (a burst of one thread, oldest first) to the members they concern; the
    number of notifications sent."""
    if not entries or not await PushTarget.exists():
        return 0
    raise NotImplementedError

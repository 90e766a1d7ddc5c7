"""Presence and typing: live signals that are never stored in a timeline and take no seq.

`set_status` is the `presence` op (and a client's will, so a killed client goes offline): the
change goes to the threads the user is in and to their friends, at QoS 0. `typing` goes to one
thread, to its members only.
"""

from __future__ import annotations

from actions.context import Context
from contract.events import PresenceEvent, TypingEvent
from contract.http import PresenceResult, PresenceView
from models.clock import epoch_ms
from models.presence import PresenceState, get_presence, presence_audience, set_presence
from models.thread import check_member
from models.user import get_user


def _event(state: PresenceState) -> PresenceEvent:
    seen = epoch_ms(state.last_seen_at) if state.last_seen_at else None
    return PresenceEvent(type="presence", user_id=state.user_id, status=state.status.value,
                         last_seen_at=seen)


async def set_status(ctx: Context, user_id: str, status: str) -> PresenceResult:
    state = await set_presence(user_id, status)
    if state.changed:
        threads, friends = await presence_audience(user_id)
        event = _event(state)
        await ctx.publish([(ctx.topics.thread(t), event) for t in threads]
                          + [(ctx.topics.user(f), event) for f in friends], qos=0)
    return PresenceResult(status=state.status.value)


async def presence_of(viewer_id: str, user_id: str) -> PresenceView:
    """A user's presence, for those allowed to see it (friends, co-members, self)."""
    _ = await get_user(user_id)
    event = _event(await get_presence(viewer_id, user_id))
    return PresenceView(user_id=user_id, status=event.status, last_seen_at=event.last_seen_at)


async def typing(ctx: Context, user_id: str, thread_id: str, is_typing: bool) -> None:
    await check_member(thread_id, user_id)
    await ctx.publish([(ctx.topics.thread(thread_id), TypingEvent(
        type="typ", thread_id=thread_id, from_=user_id, is_typing=is_typing))], qos=0)

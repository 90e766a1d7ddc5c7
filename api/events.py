"""Publishing from HTTP requests: after the commit, through the shared publisher interface.

A publish failure never undoes a commit: the change is stored and clients catch up by seq, so
it is logged, not returned as an error.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from actions.timeline import entry_event
from api.state import ApiState
from broker.errors import BrokerError
from broker.link.publisher import Event
from contract.events import (
    KickedEvent,
    ThreadAddedEvent,
    ThreadBrief,
    ThreadRemovedEvent,
    UserUpdatedEvent,
)
from contract.http import UserProfile, UserSelf
from models.clock import utcnow
from models.membership import MembershipChange
from models.thread import member_ids
from models.user import User

logger = logging.getLogger(__name__)


async def announce(state: ApiState, events: list[Event]) -> None:
    await state.ctx.publish(events)


async def announce_session_end(state: ApiState, user_id: str, session_id: str) -> None:
    """Tell the broker a session ended; its access tokens live at most one more TTL."""
    until = int(utcnow().timestamp()) + state.settings.access_token_ttl
    try:
        await state.access.session_ended(user_id, session_id, until)
    except BrokerError as exc:
        logger.error("session %s ended, but the broker was not told: %s", session_id, exc)


async def kick(state: ApiState, user_id: str, session_ids: Sequence[str], reason: str) -> None:
    """Tell the devices of ended sessions why, then the broker, which closes their connections.

    The `kicked` event goes first, on `{prefix}/u/{user}`, so the device still connected there
    reads it before the broker drops it; every device of the user sees it and compares
    `session_id` with its own.
    """
    if not session_ids:
        return
    topic = state.scheme.user(user_id)
    await announce(state, [
        (topic, KickedEvent(type="kicked", session_id=sid, reason=reason))
        for sid in session_ids
    ])
    for sid in session_ids:
        await announce_session_end(state, user_id, sid)


async def announce_user_updated(
    state: ApiState, user: User, friend_ids: Sequence[str] = ()
) -> None:
    """`user_updated` to the user's own devices (with their own view: email, phone) and to each
    of `friend_ids` (with the public profile)."""
    events: list[Event] = [(state.scheme.user(user.id), UserUpdatedEvent(
        type="user_updated", user=UserSelf.model_validate(user.public())))]
    public = UserUpdatedEvent(type="user_updated",
                              user=UserProfile.model_validate(user.profile()))
    events += [(state.scheme.user(fid), public) for fid in friend_ids]
    await announce(state, events)


async def announce_membership(state: ApiState, change: MembershipChange, actor_id: str) -> None:
    """Tell the broker, then the thread, then each added or removed user."""
    thread_id = change.thread.id
    members = await member_ids(thread_id)
    try:
        await state.access.membership_changed(thread_id, members)
    except BrokerError as exc:  # `mqim acl sync` repairs it
        logger.error("membership of %s changed, but the broker was not told: %s", thread_id, exc)
    scheme = state.scheme
    events: list[Event] = []
    if change.entry is not None:
        events.append((scheme.thread(thread_id), entry_event(change.entry)))
    if change.added:
        summary = ThreadBrief(thread_id=thread_id, type=change.thread.kind.value,
                              name=change.thread.name, participant_ids=members)
        events += [
            (scheme.user(uid), ThreadAddedEvent(type="thread_added", thread_id=thread_id,
                                                by=actor_id, thread=summary))
            for uid in change.added
        ]
    events += [
        (scheme.user(uid), ThreadRemovedEvent(type="thread_removed", thread_id=thread_id,
                                              by=actor_id))
        for uid in change.removed
    ]
    await announce(state, events)

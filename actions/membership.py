"""Who is in a thread: the one code path behind creating a thread (direct, group, room), adding
members, removing one or leaving, joining by oneself, deciding invitations, and finding rooms
(listing and showing threads are in actions/threadviews.py).

The rules and the writes live in models/membership.py and models/rooms.py; a change is
announced after its commit by `announce_membership`: the broker first (so an added member may
subscribe at once and a removed one is refused), then the timeline `event` on the thread, then
`thread_added` or `thread_removed` to each user concerned, then any `invitation` events.
"""

from __future__ import annotations

from collections.abc import Sequence

from actions.context import Context
from actions.threadviews import info_of
from actions.timeline import entry_event
from broker.link.publisher import Event
from contract.events import InvitationEvent, ThreadAddedEvent, ThreadBrief, ThreadRemovedEvent
from contract.membership import (
    InvitationDecided,
    InvitationInfo,
    JoinResult,
    MemberRemoved,
    MembersAdded,
)
from contract.rooms import RoomListItem
from contract.threads import CreatedThread, Geo
from models import membership, rooms
from models.clock import epoch_ms
from models.invitation import Invitation
from models.membership import MembershipChange
from models.thread import get_roster, member_ids


async def create_thread(
    ctx: Context, creator_id: str, kind: str, user_ids: Sequence[str], name: str | None, *,
    capacity: int | None = None, place: tuple[float, float] | None = None,
) -> CreatedThread:
    """A new thread with the creator in it, or the direct thread the pair already has."""
    change = await membership.create_thread(creator_id, kind, user_ids, name, capacity=capacity,
                                            place=place)
    if change.created:
        await announce_membership(ctx, change, creator_id)
    info = info_of(await get_roster(change.thread.id, creator_id))
    return CreatedThread(**dict(info), created=change.created)


async def add_members(
    ctx: Context, actor_id: str, thread_id: str, user_ids: Sequence[str],
) -> MembersAdded:
    """Add users (admins: anyone; members: their friends), or invite them when the thread
    wants approval of a non-admin's add."""
    change = await membership.add_members(actor_id, thread_id, user_ids)
    await announce_membership(ctx, change, actor_id)
    return MembersAdded(thread_id=thread_id, added=change.added, invited=change.invited,
                        seq=change.entry.seq if change.entry else None)


async def remove_member(ctx: Context, actor_id: str, thread_id: str, user_id: str) -> MemberRemoved:
    """Remove `user_id` from a group or room, or leave it when that is the actor."""
    change = await membership.remove_member(actor_id, thread_id, user_id)
    await announce_membership(ctx, change, actor_id)
    return MemberRemoved(thread_id=thread_id, removed=change.removed,
                         seq=change.entry.seq if change.entry else None)


async def join_thread(ctx: Context, user_id: str, thread_id: str) -> JoinResult:
    """The user joins a public group or a room (at once, or as a pending join request when it
    wants approval). Also what a send to a room the sender is not in does first."""
    change, pending = await membership.join(user_id, thread_id)
    await announce_membership(ctx, change, user_id)
    return JoinResult(thread_id=thread_id, joined=bool(change.added), pending=pending is not None,
                      seq=change.entry.seq if change.entry else None,
                      invitation_id=pending.id if pending else None)


async def invitations_of(
    actor_id: str, thread_id: str, status: str | None, limit: int, before_id: int | None,
) -> list[InvitationInfo]:
    """A thread's invitations and join requests, newest first (owner and admins)."""
    rows = await membership.list_invitations(actor_id, thread_id, status, limit, before_id)
    return [_info(i) for i in rows]


async def decide_invitation(
    ctx: Context, actor_id: str, thread_id: str, invitation_id: int, approve: bool,
) -> InvitationDecided:
    """Approve (the user joins, and gets `thread_added`) or reject a pending invitation; the
    invitee, and the inviter if another member, get the decided `invitation` event."""
    decision = await membership.decide_invitation(actor_id, thread_id, invitation_id, approve)
    invitation = decision.invitation
    told = [invitation.user_id]
    if invitation.inviter_id and invitation.inviter_id not in (actor_id, invitation.user_id):
        told.append(invitation.inviter_id)
    await announce_membership(ctx, decision.change, actor_id, extra=[
        (ctx.topics.user(uid), _invitation_event(invitation)) for uid in told])
    entry = decision.change.entry
    return InvitationDecided(**_info(invitation).model_dump(), seq=entry.seq if entry else None)


async def list_rooms(
    near: tuple[float, float] | None, radius_km: float, limit: int,
) -> list[RoomListItem]:
    """Rooms nearest first (with `near`), else the rooms with the most members first."""
    rows = (await rooms.rooms_near(near[0], near[1], radius_km, limit) if near is not None
            else await rooms.rooms_by_members(limit))
    return [
        RoomListItem(
            thread_id=r.thread.id, name=r.thread.name, member_count=r.member_count,
            capacity=r.thread.capacity, distance_km=r.distance_km,
            geo=(Geo(lat=r.thread.lat, lng=r.thread.lng)
                 if r.thread.lat is not None and r.thread.lng is not None else None),
        )
        for r in rows
    ]


async def announce_membership(
    ctx: Context, change: MembershipChange, actor_id: str, *, extra: Sequence[Event] = (),
) -> None:
    """Tell the broker, then the thread, then each added or removed user, then the owner and
    admins about new invitations, then `extra`."""
    thread_id = change.thread.id
    if change.added or change.removed:
        await ctx.receivers_changed(thread_id, f"membership of {thread_id} changed")
    events: list[Event] = []
    if change.entry is not None:
        events.append((ctx.topics.thread(thread_id), entry_event(change.entry)))
    if change.added:
        summary = ThreadBrief(thread_id=thread_id, type=change.thread.kind.value,
                              name=change.thread.name, participant_ids=await member_ids(thread_id))
        events += [
            (ctx.topics.user(uid), ThreadAddedEvent(type="thread_added", thread_id=thread_id,
                                                    by=actor_id, thread=summary))
            for uid in change.added
        ]
    events += [
        (ctx.topics.user(uid), ThreadRemovedEvent(type="thread_removed", thread_id=thread_id,
                                                  by=actor_id, reason=change.reason))
        for uid in change.removed
    ]
    events += [(ctx.topics.user(admin), _invitation_event(invitation))
               for invitation in change.invitations for admin in change.admin_ids]
    events += extra
    await ctx.publish(events)


def _invitation_event(invitation: Invitation) -> InvitationEvent:
    return InvitationEvent(
        type="invitation", invitation_id=invitation.id, thread_id=invitation.thread_id,
        user_id=invitation.user_id, inviter_id=invitation.inviter_id,
        status=invitation.status.value, created_at=epoch_ms(invitation.created_at))


def _info(invitation: Invitation) -> InvitationInfo:
    return InvitationInfo(
        invitation_id=invitation.id, thread_id=invitation.thread_id, user_id=invitation.user_id,
        inviter_id=invitation.inviter_id, status=invitation.status.value,
        created_at=invitation.created_at.isoformat(), decided_by=invitation.decided_by_id,
        decided_at=invitation.decided_at.isoformat() if invitation.decided_at else None,
    )

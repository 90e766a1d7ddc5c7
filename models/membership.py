"""Creating threads and changing who is in them; every change is a timeline event with a seq.

Rules (docs/threads.md): a direct thread joins exactly two distinct users and is unique per pair;
opened by someone who is not the other user's friend, it is a message request on that user's
side. In a group or room, admins (the owner counts) add anyone and other members only their
friends; with `join_approval` on, a non-admin's add becomes pending invitations for the owner
and admins to decide. Anyone may join a public group or a room (`join`), at once or as a pending
join request. Admins remove members, only the owner removes admins, nobody removes the owner;
anyone may leave, and when the owner leaves the longest-serving admin (else member) becomes
owner. A dissolved thread takes no change (3002), except that a member may still leave it.

Bookkeeping for history visibility (docs/design.md section 4): a user who joins starts reading
(`join_seq`, `read_seq`) at the `log:subscribe` entry that let them in, and loses any former-
member row; a user who leaves or is removed gets a `PastMember` row with their join seq and the
seq of the `log:unsubscribe` entry. Every write locks the thread row first (`lock_thread`), so
concurrent joins of a room are counted one after the other against its capacity.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, cast

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from contract.errors import (
    AlreadyMemberError,
    CannotActOnOwnerError,
    ForbiddenError,
    InvalidParameterError,
    InvitationDecidedError,
    NotAdminError,
    NotFoundError,
    RoomFullError,
    UserNotFoundError,
)
from contract.membership import MemberLeftLog, MemberRemovedLog, MembersJoinedLog
from models.block import check_not_blocked
from models.clock import utcnow
from models.friendship import are_friends, friend_ids_among
from models.ids import new_thread_id
from models.invitation import Invitation, InvitationStatus
from models.message import Message, append_event
from models.rooms import check_room
from models.thread import (
    Member,
    MemberStatus,
    PastMember,
    Role,
    Thread,
    ThreadKind,
    ThreadStatus,
    Visibility,
    get_membership,
    is_admin,
    lock_thread,
    require_active,
    require_admin,
)
from models.user import User, check_text, check_users_exist

GROUP_NAME_MAX = 100
GROUP_SIZE_MAX = 5000
INVITATIONS_LIMIT_MAX = 200

# Why users are no longer in a thread (the `reason` of their `thread_removed` event).
RemovalReason = Literal["left", "removed", "dissolved", "deleted", "declined"]


@dataclass(frozen=True)
class MembershipChange:
    """What a membership operation did, for the use case to announce after commit."""

    thread: Thread
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    reason: RemovalReason = "removed"  # why the `removed` users are out
    entry: Message | None = None
    created: bool = False
    invited: list[str] = field(default_factory=list)  # users now waiting for approval
    invitations: list[Invitation] = field(default_factory=list)  # the ones stored by this change
    admin_ids: list[str] = field(default_factory=list)  # who decides them: owner and admins


@dataclass(frozen=True)
class Decision:
    """An invitation as decided; `change` holds the join when it was approved."""

    invitation: Invitation
    change: MembershipChange


async def create_thread(
    creator_id: str, kind: str, user_ids: Sequence[str], name: str | None = None, *,
    capacity: int | None = None, place: tuple[float, float] | None = None,
) -> MembershipChange:
    """Create a thread with the creator in it; a direct thread is returned if it already exists.
    A room (public, with a capacity and maybe a place) starts with its creator alone."""
    if kind not in (ThreadKind.DIRECT, ThreadKind.GROUP, ThreadKind.ROOM):
        raise InvalidParameterError("type must be 'direct', 'group' or 'room'")
    others = [u for u in dict.fromkeys(user_ids) if u != creator_id]
    if name is not None and (not name.strip() or len(name) > GROUP_NAME_MAX):
        raise InvalidParameterError(f"name must be 1 to {GROUP_NAME_MAX} characters")
    if name is not None:
        check_text(name, "name")
    if kind == ThreadKind.ROOM:
        if name is None:
            raise InvalidParameterError("a room needs a name")
        if others:
            raise InvalidParameterError("a room starts with its creator alone: others join it")
        check_room(capacity, place)
    elif capacity is not None or place is not None:
        raise InvalidParameterError("capacity and geo are for rooms only")
    if kind == ThreadKind.DIRECT:
        if len(others) != 1:
            raise InvalidParameterError("a direct thread needs exactly one other user")
        return await _create_direct(creator_id, others[0])
    if len(others) + 1 > GROUP_SIZE_MAX:
        raise InvalidParameterError(f"a group holds at most {GROUP_SIZE_MAX} members")
    await check_users_exist(others)
    room = kind == ThreadKind.ROOM
    async with in_transaction() as conn:
        thread = await Thread.create(
            id=new_thread_id(), kind=kind, name=name, owner_id=creator_id,
            visibility=Visibility.PUBLIC if room else Visibility.PRIVATE, capacity=capacity,
            lat=place[0] if place else None, lng=place[1] if place else None, using_db=conn,
        )
        entry = await _admit(conn, thread.id, creator_id, [creator_id, *others],
                             f"{creator_id} created the {'room' if room else 'group'}",
                             owner_id=creator_id)
    return MembershipChange(thread, added=[creator_id, *others], entry=entry, created=True)


async def _create_direct(creator_id: str, other_id: str) -> MembershipChange:
    await check_users_exist([other_id])
    # Either user blocked the other: no direct thread (an existing one stays, and refuses
    # messages while the block lasts; see models.message).
    await check_not_blocked(creator_id, other_id)
    key = ":".join(sorted((creator_id, other_id)))
    existing = await Thread.get_or_none(direct_key=key)
    if existing is not None:
        return MembershipChange(existing)
    try:
        async with in_transaction() as conn:
            request = not await are_friends(conn, other_id, creator_id)
            thread = await Thread.create(
                id=new_thread_id(), kind=ThreadKind.DIRECT, direct_key=key, using_db=conn
            )
            # No log entry: both read from seq 1, and nothing is read yet.
            await Member.bulk_create(
                [Member(thread=thread, user_id=creator_id, join_seq=1, read_seq=0),
                 Member(thread=thread, user_id=other_id, join_seq=1, read_seq=0,
                        is_request=request)],
                using_db=conn,
            )
    except IntegrityError:  # the other user created it at the same moment
        return MembershipChange(await Thread.get(direct_key=key))
    return MembershipChange(thread, added=[creator_id, other_id], created=True)


async def add_members(actor_id: str, thread_id: str, user_ids: Sequence[str]) -> MembershipChange:
    """Add users to a group or room the actor is in, or invite them when it wants approval."""
    wanted = list(dict.fromkeys(user_ids))
    if not wanted:
        raise InvalidParameterError("user_ids must name at least one user")
    await check_users_exist(wanted)
    async with in_transaction() as conn:
        thread = await lock_thread(conn, thread_id)
        actor = await get_membership(thread_id, actor_id, conn)
        _check_changeable(thread)
        present = set(cast(list[str], await Member.filter(thread_id=thread_id, user_id__in=wanted)
                           .using_db(conn).values_list("user_id", flat=True)))
        if present:
            raise AlreadyMemberError(f"already members: {', '.join(sorted(present))}")
        admin = is_admin(actor)
        if not admin:
            friends = await friend_ids_among(actor_id, wanted, conn)
            if strangers := [u for u in wanted if u not in friends]:
                raise ForbiddenError("only the owner or an admin may add someone who is not "
                                     f"your friend: {', '.join(strangers)}")
            if thread.join_approval:
                stored = await _invite(conn, thread_id, wanted, actor_id)
                return MembershipChange(thread, invited=wanted, invitations=stored,
                                        admin_ids=await _admin_ids(conn, thread_id))
        await _check_room_for(conn, thread, len(wanted))
        entry = await _admit(conn, thread_id, actor_id, wanted,
                             f"{actor_id} added {', '.join(wanted)}")
    return MembershipChange(thread, added=wanted, entry=entry)


async def join(user_id: str, thread_id: str) -> tuple[MembershipChange, Invitation | None]:
    """The user joins a public group or a room by themselves; when it wants approval, a pending
    join request (an invitation with no inviter) instead, returned second."""
    async with in_transaction() as conn:
        thread = await lock_thread(conn, thread_id)
        if thread.kind != ThreadKind.ROOM and (thread.kind == ThreadKind.DIRECT
                                               or thread.visibility != Visibility.PUBLIC):
            raise ForbiddenError(f"thread {thread_id} is private: only a member can add you")
        require_active(thread)
        if await Member.filter(thread_id=thread_id, user_id=user_id).using_db(conn).exists():
            raise AlreadyMemberError(f"already a member of thread {thread_id}")
        if thread.join_approval:
            stored = await _invite(conn, thread_id, [user_id], None)
            pending = await Invitation.get(thread_id=thread_id, user_id=user_id,
                                           status=InvitationStatus.PENDING, using_db=conn)
            return (MembershipChange(thread, invited=[user_id], invitations=stored,
                                     admin_ids=await _admin_ids(conn, thread_id)), pending)
        await _check_room_for(conn, thread, 1)
        entry = await _admit(conn, thread_id, user_id, [user_id], f"{user_id} joined")
    return MembershipChange(thread, added=[user_id], entry=entry), None


async def remove_member(actor_id: str, thread_id: str, user_id: str) -> MembershipChange:
    """Remove `user_id` (or leave, when actor and user are the same)."""
    async with in_transaction() as conn:
        # The thread row first, as models.append does (it updates members' read_seq while
        # holding it): deleting the member row first deadlocks against a send.
        thread = await lock_thread(conn, thread_id)
        actor = await get_membership(thread_id, actor_id, conn)
        if thread.kind == ThreadKind.DIRECT:
            raise InvalidParameterError("members of a direct thread cannot change")
        leaving = user_id == actor_id
        target = actor if leaving else await get_membership(thread_id, user_id, conn)
        if not leaving:
            require_active(thread)
            if not is_admin(actor):
                raise NotAdminError("only the owner or an admin may remove members")
            if target.role == Role.OWNER:
                raise CannotActOnOwnerError("nobody may remove the owner")
            if target.role == Role.ADMIN and actor.role != Role.OWNER:
                raise CannotActOnOwnerError("only the owner may remove an admin")
        await target.delete(using_db=conn)
        status = MemberStatus.LEFT if leaving else MemberStatus.REMOVED
        entry = None
        # A dissolved thread takes no more entries: its leaver reads up to its last one.
        if thread.status == ThreadStatus.ACTIVE:
            if target.role == Role.OWNER:
                await _hand_over_ownership(thread, conn)
            log: MemberLeftLog | MemberRemovedLog = (
                MemberLeftLog(left_participant_fbid=user_id) if leaving
                else MemberRemovedLog(removed_participant=user_id))
            entry = await _log(conn, thread_id, actor_id, log,
                               f"{user_id} left" if leaving else f"{actor_id} removed {user_id}")
        await PastMember.filter(thread_id=thread_id, user_id=user_id).using_db(conn).delete()
        _ = await PastMember.create(
            thread_id=thread_id, user_id=user_id, status=status, join_seq=target.join_seq,
            leave_seq=entry.seq if entry else thread.last_seq, joined_at=target.joined_at,
            using_db=conn)
    return MembershipChange(thread, removed=[user_id], reason="left" if leaving else "removed",
                            entry=entry)


async def list_invitations(
    actor_id: str, thread_id: str, status: str | None, limit: int, before_id: int | None,
) -> list[Invitation]:
    """A thread's invitations and join requests, newest first, for its owner and admins."""
    require_admin(await get_membership(thread_id, actor_id))
    query = Invitation.filter(thread_id=thread_id)
    if status is not None:
        if status not in set(InvitationStatus):
            raise InvalidParameterError("status must be pending, approved or rejected")
        query = query.filter(status=status)
    if before_id is not None:
        query = query.filter(id__lt=before_id)
    return list(await query.order_by("-id").limit(min(limit, INVITATIONS_LIMIT_MAX)))


async def decide_invitation(
    actor_id: str, thread_id: str, invitation_id: int, approve: bool,
) -> Decision:
    """Approve (the user joins) or reject a pending invitation; InvitationDecidedError if it
    was decided already."""
    async with in_transaction() as conn:
        thread = await lock_thread(conn, thread_id)
        require_admin(await get_membership(thread_id, actor_id, conn))
        invitation = await Invitation.filter(id=invitation_id, thread_id=thread_id).using_db(
            conn).first()
        if invitation is None:
            raise NotFoundError(f"invitation {invitation_id} not found in thread {thread_id}")
        if invitation.status != InvitationStatus.PENDING:
            raise InvitationDecidedError(
                f"invitation {invitation_id} was already {invitation.status.value}")
        require_active(thread)
        user_id = invitation.user_id
        if not approve:
            invitation.status = InvitationStatus.REJECTED
            invitation.decided_by_id, invitation.decided_at = actor_id, utcnow()
            await invitation.save(using_db=conn)
            return Decision(invitation, MembershipChange(thread))
        if not await User.filter(id=user_id, deleted_at=None).using_db(conn).exists():
            raise UserNotFoundError(f"user {user_id} not found")
        if await Member.filter(thread_id=thread_id, user_id=user_id).using_db(conn).exists():
            raise AlreadyMemberError(f"{user_id} is already a member")
        await _check_room_for(conn, thread, 1)
        entry = await _admit(conn, thread_id, actor_id, [user_id],
                             f"{actor_id} let {user_id} in")  # settles the invitation
        await invitation.refresh_from_db(using_db=conn)
    return Decision(invitation, MembershipChange(thread, added=[user_id], entry=entry))


def _check_changeable(thread: Thread) -> None:
    if thread.kind == ThreadKind.DIRECT:
        raise InvalidParameterError("members of a direct thread cannot change")
    require_active(thread)


async def _check_room_for(conn: BaseDBAsyncClient, thread: Thread, adding: int) -> None:
    """Room for `adding` more members; the caller holds the thread's row lock, so the count
    cannot change until commit."""
    size = await Member.filter(thread_id=thread.id).using_db(conn).count()
    if thread.kind == ThreadKind.ROOM and thread.capacity is not None:
        if size + adding > thread.capacity:
            raise RoomFullError(thread.id, thread.capacity)
    elif size + adding > GROUP_SIZE_MAX:
        raise InvalidParameterError(f"a group holds at most {GROUP_SIZE_MAX} members")


async def _admit(
    conn: BaseDBAsyncClient, thread_id: str, actor_id: str, user_ids: list[str], body: str,
    owner_id: str | None = None,
) -> Message:
    """Let users in with one `log:subscribe` entry: they read from it (a rejoiner from their
    latest join), their former-member rows go, and their pending invitations are approved."""
    entry = await _log(conn, thread_id, actor_id, MembersJoinedLog(added_participants=user_ids),
                       body)
    await Member.bulk_create(
        [Member(thread_id=thread_id, user_id=uid, join_seq=entry.seq, read_seq=entry.seq,
                role=Role.OWNER if uid == owner_id else Role.MEMBER) for uid in user_ids],
        using_db=conn,
    )
    await PastMember.filter(thread_id=thread_id, user_id__in=user_ids).using_db(conn).delete()
    await Invitation.filter(
        thread_id=thread_id, user_id__in=user_ids, status=InvitationStatus.PENDING,
    ).using_db(conn).update(status=InvitationStatus.APPROVED, decided_by_id=actor_id,
                            decided_at=utcnow())
    return entry


async def _invite(
    conn: BaseDBAsyncClient, thread_id: str, user_ids: list[str], inviter_id: str | None,
) -> list[Invitation]:
    """Pending invitations for those of `user_ids` who have none yet (a second one for the same
    user is not stored: they are simply still invited); the ones stored."""
    waiting = set(cast(list[str], await Invitation.filter(
        thread_id=thread_id, user_id__in=user_ids, status=InvitationStatus.PENDING,
    ).using_db(conn).values_list("user_id", flat=True)))
    return [await Invitation.create(thread_id=thread_id, user_id=uid, inviter_id=inviter_id,
                                    using_db=conn)
            for uid in user_ids if uid not in waiting]


async def _admin_ids(conn: BaseDBAsyncClient, thread_id: str) -> list[str]:
    rows = await Member.filter(thread_id=thread_id, role__in=[Role.OWNER, Role.ADMIN]).using_db(
        conn).order_by("id").values_list("user_id", flat=True)
    return cast(list[str], rows)


async def _log(
    conn: BaseDBAsyncClient, thread_id: str, actor_id: str,
    data: MembersJoinedLog | MemberLeftLog | MemberRemovedLog, body: str,
) -> Message:
    return await append_event(conn, thread_id, actor_id, data.log_type, data.model_dump(), body)


async def _hand_over_ownership(thread: Thread, conn: BaseDBAsyncClient) -> None:
    remaining = Member.filter(thread_id=thread.id).using_db(conn).order_by("id")
    successor = await remaining.filter(role=Role.ADMIN).first() or await remaining.first()
    thread.owner_id = successor.user_id if successor else None
    await thread.save(update_fields=["owner_id"], using_db=conn)
    if successor is not None:
        successor.role = Role.OWNER
        await successor.save(update_fields=["role"], using_db=conn)

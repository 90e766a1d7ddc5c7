"""Friends, friend requests and blocks: the one code path behind the `/api/friends` and
`/api/blocks` routes.

The writes that span the three tables (a request, or a request back that befriends; accepting;
blocking, which ends the friendship and rejects the pending requests) are composed here, each in
one transaction that first row-locks both users (models/friendship.py `lock_users`). The rules
themselves are in models/friend_request.py and models/block.py.

After the commit, personal events go to `{prefix}/u/{user}`: `friend_request` to the recipient
of a pending request, `friend_request_accepted` / `friend_request_rejected` to the sender of a
decided one, `friend_removed` to the removed friend. A block publishes nothing: the blocked user
is not told.
"""

from __future__ import annotations

from collections.abc import Sequence

from tortoise.transactions import in_transaction

from actions.context import Context
from actions.friendgroups import group_ref
from actions.profiles import user_profile
from contract.errors import AlreadyFriendsError, InvalidParameterError, RequestExistsError
from contract.events import (
    FriendRemovedEvent,
    FriendRequestAcceptedEvent,
    FriendRequestEvent,
    FriendRequestRejectedEvent,
)
from contract.social import BlockEntry, FriendEntry, FriendGroupRef, FriendRequestInfo, UserRef
from models.block import (
    Block,
    check_not_blocked,
    do_block,
    find_block,
    list_blocks,
    unblock_user,
)
from models.bots import bot_ids
from models.clock import epoch_ms, utcnow
from models.friend_request import (
    FriendRequest,
    RequestStatus,
    check_request_message,
    do_create_request,
    do_reject,
    do_settle_pending,
    list_friend_requests,
    load_request,
    pending_between,
    reload_pending,
    request_for_recipient,
)
from models.friendgroup import groups_by_member
from models.friendship import (
    Friendship,
    are_friends,
    check_live,
    do_befriend,
    do_unfriend,
    get_friendship,
    list_friendships,
    lock_users,
    remove_friend,
)
from models.user import check_id_ref

# --- the shapes -------------------------------------------------------------------------------


async def _bots(requests: Sequence[FriendRequest]) -> frozenset[str]:
    """Which of the requests' users are bots, in one statement."""
    return await bot_ids(u for r in requests for u in (r.from_user_id, r.to_user_id))


def request_info(request: FriendRequest, bots: frozenset[str]) -> FriendRequestInfo:
    """A request as its users see it (`from_user` and `to_user` loaded)."""
    return FriendRequestInfo(
        id=request.id, from_=user_profile(request.from_user, is_bot=request.from_user_id in bots),
        to=user_profile(request.to_user, is_bot=request.to_user_id in bots),
        message=request.message, status=request.status.value,
        created_at=request.created_at.isoformat(),
        decided_at=request.decided_at.isoformat() if request.decided_at else None,
    )


def _request_event(request: FriendRequest, bots: frozenset[str]) -> FriendRequestEvent:
    """To the recipient of a new pending request."""
    return FriendRequestEvent(
        type="friend_request", request_id=request.id,
        from_=user_profile(request.from_user, is_bot=request.from_user_id in bots),
        message=request.message, created_at=epoch_ms(request.created_at))


def _decided_ms(request: FriendRequest) -> int:
    return epoch_ms(request.decided_at or utcnow())


def _accepted_event(request: FriendRequest, bots: frozenset[str]) -> FriendRequestAcceptedEvent:
    """To the sender of a request that was accepted (`user`: who accepted)."""
    return FriendRequestAcceptedEvent(
        type="friend_request_accepted", request_id=request.id,
        user=user_profile(request.to_user, is_bot=request.to_user_id in bots),
        decided_at=_decided_ms(request))


def _rejected_event(request: FriendRequest) -> FriendRequestRejectedEvent:
    """To the sender of a request that its recipient rejected."""
    return FriendRequestRejectedEvent(
        type="friend_request_rejected", request_id=request.id, user_id=request.to_user_id,
        decided_at=_decided_ms(request))


def _friend_entry(row: Friendship, groups: list[FriendGroupRef], bots: frozenset[str]
                  ) -> FriendEntry:
    return FriendEntry(user=user_profile(row.friend, is_bot=row.friend_id in bots),
                       since=row.created_at.isoformat(), groups=groups)


def _block_entry(block: Block, bots: frozenset[str]) -> BlockEntry:
    return BlockEntry(user=user_profile(block.blocked, is_bot=block.blocked_id in bots),
                      created_at=block.created_at.isoformat())


# --- friend requests --------------------------------------------------------------------------


async def send_request(ctx: Context, from_id: str, to_id: str, message: str) -> FriendRequestInfo:
    """Ask `to_id` to be friends (see models/friend_request.py for what is refused). When
    `to_id`'s request to the sender is pending, this accepts it instead: the new request is
    stored as accepted, the two are friends, and `to_id` is told theirs was accepted."""
    message = check_request_message(message)
    check_id_ref(to_id)
    if to_id == from_id:
        raise InvalidParameterError("you cannot send a friend request to yourself")
    async with in_transaction() as conn:
        users = await lock_users(conn, from_id, to_id)
        target = check_live(users, to_id)
        await check_not_blocked(from_id, to_id, conn)
        if await are_friends(conn, from_id, to_id):
            raise AlreadyFriendsError(f"you and {to_id} are already friends")
        pending = await pending_between(conn, from_id, to_id)
        if any(r.from_user_id == from_id for r in pending):
            raise RequestExistsError(f"your friend request to {to_id} is still pending")
        theirs = pending[0] if pending else None
        now = utcnow()
        sent = await do_create_request(conn, users[from_id], target, message,
                                       accepted_at=now if theirs else None)
        if theirs is not None:
            await do_befriend(conn, from_id, to_id, now)
            await do_settle_pending(conn, from_id, to_id, RequestStatus.ACCEPTED, now)
    bots = await bot_ids((from_id, to_id))
    if theirs is None:
        await ctx.publish([(ctx.topics.user(to_id), _request_event(sent, bots))])
    else:
        accepted = await load_request(theirs.id)
        await ctx.publish([(ctx.topics.user(accepted.from_user_id),
                            _accepted_event(accepted, bots))])
    return request_info(sent, bots)


async def accept_request(ctx: Context, user_id: str, request_id: int) -> FriendRequestInfo:
    """Accept a pending request sent to the user: the two become friends, and every other
    pending request between them is accepted too."""
    request = await request_for_recipient(user_id, request_id)
    async with in_transaction() as conn:
        users = await lock_users(conn, request.from_user_id, user_id)
        request = await reload_pending(conn, request.id)
        _ = check_live(users, request.from_user_id)
        await check_not_blocked(user_id, request.from_user_id, conn)
        now = utcnow()
        await do_befriend(conn, request.from_user_id, user_id, now)
        await do_settle_pending(conn, request.from_user_id, user_id, RequestStatus.ACCEPTED, now)
    decided = await load_request(request.id)
    bots = await _bots([decided])
    await ctx.publish([(ctx.topics.user(decided.from_user_id), _accepted_event(decided, bots))])
    return request_info(decided, bots)


async def reject_request(ctx: Context, user_id: str, request_id: int) -> FriendRequestInfo:
    """Reject a pending request sent to the user (a deleted sender's too)."""
    request = await request_for_recipient(user_id, request_id)
    async with in_transaction() as conn:
        _ = await lock_users(conn, request.from_user_id, user_id)
        request = await reload_pending(conn, request.id)
        await do_reject(conn, request, utcnow())
    decided = await load_request(request.id)
    await ctx.publish([(ctx.topics.user(decided.from_user_id), _rejected_event(decided))])
    return request_info(decided, await _bots([decided]))


async def requests_of(
    user_id: str, direction: str | None, status: str | None
) -> list[FriendRequestInfo]:
    """The user's requests, incoming, outgoing or both, newest first."""
    requests = await list_friend_requests(user_id, direction, status)
    bots = await _bots(requests)
    return [request_info(r, bots) for r in requests]


# --- friendships ------------------------------------------------------------------------------


async def friends_of(user_id: str) -> list[FriendEntry]:
    """The user's friends, by the name they show, each with the user's groups they are in."""
    rows = await list_friendships(user_id)
    groups = await groups_by_member(user_id, [r.friend_id for r in rows])
    bots = await bot_ids(r.friend_id for r in rows)
    entries = [_friend_entry(r, [group_ref(g) for g in groups.get(r.friend_id, [])], bots)
               for r in rows]
    return sorted(entries, key=lambda f: (f.user.name.casefold(), f.user.id))


async def friend_of(user_id: str, friend_id: str) -> FriendEntry:
    """One friend; NotFoundError if not a friend (UserNotFoundError if no such live user)."""
    row = await get_friendship(user_id, friend_id)
    groups = await groups_by_member(user_id, [friend_id])
    return _friend_entry(row, [group_ref(g) for g in groups.get(friend_id, [])],
                         await bot_ids((friend_id,)))


async def unfriend(ctx: Context, user_id: str, friend_id: str) -> UserRef:
    """End a friendship both ways (each leaves the other's friend groups); the removed friend
    is told."""
    await remove_friend(user_id, friend_id)
    await ctx.publish([(ctx.topics.user(friend_id),
                        FriendRemovedEvent(type="friend_removed", user_id=user_id))])
    return UserRef(user_id=friend_id)


# --- blocks -----------------------------------------------------------------------------------


async def block(user_id: str, target_id: str) -> tuple[BlockEntry, bool]:
    """Block a live user; the bool says whether the block is new (blocking again changes
    nothing). A new block ends the friendship and rejects the pending requests between the two.
    Nobody is told."""
    check_id_ref(target_id)
    if target_id == user_id:
        raise InvalidParameterError("you cannot block yourself")
    async with in_transaction() as conn:
        users = await lock_users(conn, user_id, target_id)
        target = check_live(users, target_id)
        existing = await find_block(conn, user_id, target_id)
        if existing is not None:
            return _block_entry(existing, await bot_ids((target_id,))), False
        created = await do_block(conn, users[user_id], target)
        _ = await do_unfriend(conn, user_id, target_id)
        await do_settle_pending(conn, user_id, target_id, RequestStatus.REJECTED, utcnow())
    return _block_entry(created, await bot_ids((target_id,))), True


async def unblock(user_id: str, target_id: str) -> UserRef:
    """Lift a block (a friendship it ended stays ended); NotFoundError if there is none."""
    await unblock_user(user_id, target_id)
    return UserRef(user_id=target_id)


async def blocks_of(user_id: str) -> list[BlockEntry]:
    """Whom the user blocked, newest first."""
    blocks = await list_blocks(user_id)
    bots = await bot_ids(b.blocked_id for b in blocks)
    return [_block_entry(b, bots) for b in blocks]

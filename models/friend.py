"""Friendships, friend requests and blocks: the tables and the operations on them.

Rules (README, "Friends and blocks"):

- A friend request goes to another live user, with a message of at most 200 characters. It is
  refused when the two are already friends (1007), when the sender's earlier request to that user
  is still pending (1011), or when either of them blocked the other (1009). When the other user's
  request to the sender is pending, sending one back accepts it: both requests become `accepted`
  and the two are friends.
- Only the recipient accepts or rejects a request, and only while it is pending. Accepting makes
  the two friends and accepts every other pending request between them.
- A friendship is two rows, one per direction. Ending it removes both, and takes each user out of
  the other's friend groups.
- Blocking ends the friendship, rejects the pending requests between the two, and from then on
  refuses friend requests, new direct threads and messages in their direct thread, either way.
  Group threads are unaffected.

Every write between two users first row-locks both users' rows (PostgreSQL `FOR NO KEY UPDATE`,
in id order, which does not hold up inserts that merely reference the users), so requests,
accepts, removals and blocks between the same two users run one after the other. SQLite already
runs the process's transactions one at a time.

Friend groups (`models.friendgroup`) are built on friendships and import this module, so the two
functions here that touch groups import theirs when called.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from tortoise import fields
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import Q
from tortoise.models import Model
from tortoise.transactions import in_transaction

from contract.errors import (
    AlreadyFriendsError,
    BlockedError,
    ForbiddenError,
    InvalidParameterError,
    NotFoundError,
    RequestExistsError,
    UserNotFoundError,
)
from contract.events import (
    FriendRemovedEvent,
    FriendRequestAcceptedEvent,
    FriendRequestEvent,
    FriendRequestRejectedEvent,
)
from models.clock import epoch_ms, utcnow
from models.user import TEXT_CONTROLS, User, check_id_ref, check_text

REQUEST_MESSAGE_MAX = 200
PK_MAX = 2**63 - 1  # ids beyond a BIGINT name nothing; never send them to the database


class RequestStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class RequestDirection(StrEnum):
    INCOMING = "incoming"
    OUTGOING = "outgoing"


class Friendship(Model):
    """One row per direction: (a, b) and (b, a) both exist while a and b are friends."""

    id = fields.BigIntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="friendships", on_delete=fields.CASCADE
    )
    friend: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name=False, on_delete=fields.CASCADE
    )
    user_id: str
    friend_id: str
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "friendship"
        unique_together = (("user", "friend"),)


class FriendRequest(Model):
    id = fields.BigIntField(primary_key=True)
    from_user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name=False, on_delete=fields.CASCADE
    )
    to_user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name=False, on_delete=fields.CASCADE
    )
    from_user_id: str
    to_user_id: str
    message = fields.CharField(max_length=200, default="")
    status = fields.CharEnumField(RequestStatus, max_length=8, default=RequestStatus.PENDING)
    created_at = fields.DatetimeField(auto_now_add=True)
    decided_at = fields.DatetimeField(null=True)

    class Meta:
        table = "friend_request"
        indexes = (("to_user_id", "status"), ("from_user_id", "status"))


class Block(Model):
    """`user` blocked `blocked`: no messages in direct threads, no requests, no presence."""

    id = fields.BigIntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="blocks", on_delete=fields.CASCADE
    )
    blocked: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name=False, on_delete=fields.CASCADE
    )
    user_id: str
    blocked_id: str
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "user_block"
        unique_together = (("user", "blocked"),)


# --- how users appear to others ---------------------------------------------------------------


def user_summary(user: User) -> dict[str, Any]:
    """A user as others see them (`User.profile()`: no email or phone, and a soft-deleted user
    as "Deleted user" with `deleted: true`). Never the password hash."""
    return user.profile()


def _sort_key(summary: dict[str, Any]) -> tuple[str, str]:
    return (str(summary["name"]).casefold(), str(summary["id"]))


async def lock_users(conn: BaseDBAsyncClient, *user_ids: str) -> dict[str, User]:
    """Row-lock the users that exist (deleted or not), in id order; the rows by id."""
    rows = await (User.filter(id__in=sorted(set(user_ids))).using_db(conn).order_by("id")
                  .select_for_update(no_key=True))
    return {u.id: u for u in rows}


def _live(users: dict[str, User], user_id: str) -> User:
    user = users.get(user_id)
    if user is None or user.deleted_at is not None:
        raise UserNotFoundError(f"user {user_id} not found")
    return user


def _pair(a: str, b: str) -> Q:
    return Q(Q(user_id=a, friend_id=b), Q(user_id=b, friend_id=a), join_type=Q.OR)


def _request_pair(a: str, b: str) -> Q:
    return Q(Q(from_user_id=a, to_user_id=b), Q(from_user_id=b, to_user_id=a), join_type=Q.OR)


# --- blocks as a rule for others (friend requests, direct threads, messages) -----------------


async def blocks_among(
    pairs: Iterable[tuple[str, str]], conn: BaseDBAsyncClient | None = None
) -> set[tuple[str, str]]:
    """The (blocker, blocked) pairs among the given pairs of users, in either direction, in one
    query."""
    wanted = {p for a, b in pairs for p in ((a, b), (b, a))}
    if not wanted:
        return set()
    users = sorted({u for pair in wanted for u in pair})
    rows = await Block.filter(user_id__in=users, blocked_id__in=users).using_db(conn).values_list(
        "user_id", "blocked_id")
    return {(str(a), str(b)) for a, b in rows} & wanted


def blocked_error(actor_id: str, other_id: str, blocker_id: str) -> BlockedError:
    """The refusal `actor_id` gets for an action towards `other_id` when `blocker_id` blocked."""
    if blocker_id == actor_id:
        return BlockedError(f"you blocked {other_id}; unblock them first")
    return BlockedError(f"{other_id} has blocked you")


async def check_not_blocked(
    actor_id: str, other_id: str, conn: BaseDBAsyncClient | None = None
) -> None:
    """Raise BlockedError if either user blocked the other."""
    found = await blocks_among([(actor_id, other_id)], conn)
    if found:
        blocker = actor_id if (actor_id, other_id) in found else other_id
        raise blocked_error(actor_id, other_id, blocker)


# --- friendships -----------------------------------------------------------------------------


async def friend_ids(user_id: str) -> list[str]:
    rows = await Friendship.filter(user_id=user_id).values_list("friend_id", flat=True)
    return sorted(str(r) for r in rows)


async def friend_ids_among(
    user_id: str, candidate_ids: Sequence[str], conn: BaseDBAsyncClient | None = None
) -> set[str]:
    """Which of `candidate_ids` are friends of `user_id`."""
    if not candidate_ids:
        return set()
    rows = await Friendship.filter(user_id=user_id, friend_id__in=list(candidate_ids)).using_db(
        conn).values_list("friend_id", flat=True)
    return {str(r) for r in rows}


async def do_befriend(conn: BaseDBAsyncClient, a: str, b: str, now: datetime) -> None:
    """Make a and b friends (idempotent) and accept every pending request between them.
    The caller holds both users' locks and has checked the rules."""
    await Friendship.bulk_create(
        [Friendship(user_id=a, friend_id=b, created_at=now),
         Friendship(user_id=b, friend_id=a, created_at=now)],
        ignore_conflicts=True, using_db=conn,
    )
    await FriendRequest.filter(_request_pair(a, b), status=RequestStatus.PENDING).using_db(
        conn).update(status=RequestStatus.ACCEPTED, decided_at=now)


async def do_unfriend(conn: BaseDBAsyncClient, a: str, b: str) -> bool:
    """End the friendship of a and b, if any, and take each out of the other's friend groups.
    True if they were friends. The caller holds both users' locks."""
    from models.friendgroup import do_drop_from_groups  # (it imports this module)

    removed = await Friendship.filter(_pair(a, b)).using_db(conn).delete()
    await do_drop_from_groups(conn, a, b)
    return bool(removed)


def friend_info(row: Friendship, groups: list[dict[str, Any]]) -> dict[str, Any]:
    return {"user": user_summary(row.friend), "since": row.created_at.isoformat(),
            "groups": groups}


async def list_friends(user_id: str) -> list[dict[str, Any]]:
    """The user's friends, by name: each with `since` and the user's groups they are in."""
    from models.friendgroup import groups_by_member  # (it imports this module)

    rows = await Friendship.filter(user_id=user_id).select_related("friend")
    groups = await groups_by_member(user_id, [r.friend_id for r in rows])
    out = [friend_info(r, groups.get(r.friend_id, [])) for r in rows]
    return sorted(out, key=lambda f: _sort_key(f["user"]))


async def get_friend(user_id: str, friend_id: str) -> dict[str, Any]:
    """One friend, with the user's groups they are in; NotFoundError if not a friend
    (UserNotFoundError if no such live user)."""
    from models.friendgroup import groups_by_member  # (it imports this module)

    check_id_ref(friend_id)
    row = await Friendship.filter(user_id=user_id, friend_id=friend_id).select_related(
        "friend").first()
    if row is None:
        if not await User.filter(id=friend_id, deleted_at=None).exists():
            raise UserNotFoundError(f"user {friend_id} not found")
        raise NotFoundError(f"{friend_id} is not your friend")
    groups = await groups_by_member(user_id, [friend_id])
    return friend_info(row, groups.get(friend_id, []))


async def remove_friend(user_id: str, friend_id: str) -> None:
    """End a friendship, both ways; NotFoundError if they are not friends."""
    check_id_ref(friend_id)
    async with in_transaction() as conn:
        users = await lock_users(conn, user_id, friend_id)
        if not await do_unfriend(conn, user_id, friend_id):
            if friend_id not in users or users[friend_id].deleted_at is not None:
                raise UserNotFoundError(f"user {friend_id} not found")
            raise NotFoundError(f"{friend_id} is not your friend")


# --- friend requests -------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestOutcome:
    """`request` is the new request; `accepted` is the other user's pending request that it
    accepted (then both are `accepted` and the two are friends)."""

    request: FriendRequest
    accepted: FriendRequest | None = None


def check_request_message(message: str) -> str:
    if len(message) > REQUEST_MESSAGE_MAX:
        raise InvalidParameterError(f"message must be at most {REQUEST_MESSAGE_MAX} characters")
    return check_text(message, "message", TEXT_CONTROLS).strip()


async def send_friend_request(from_id: str, to_id: str, message: str = "") -> RequestOutcome:
    """Ask `to_id` to be friends; see the module rules for what is refused and for the
    request back that accepts instead."""
    message = check_request_message(message)
    check_id_ref(to_id)
    if to_id == from_id:
        raise InvalidParameterError("you cannot send a friend request to yourself")
    async with in_transaction() as conn:
        users = await lock_users(conn, from_id, to_id)
        target = _live(users, to_id)
        await check_not_blocked(from_id, to_id, conn)
        if await Friendship.filter(user_id=from_id, friend_id=to_id).using_db(conn).exists():
            raise AlreadyFriendsError(f"you and {to_id} are already friends")
        pending = await FriendRequest.filter(
            _request_pair(from_id, to_id), status=RequestStatus.PENDING
        ).using_db(conn).order_by("id")
        if any(r.from_user_id == from_id for r in pending):
            raise RequestExistsError(f"your friend request to {to_id} is still pending")
        now = utcnow()
        theirs = pending[0] if pending else None
        request = await FriendRequest.create(
            from_user=users[from_id], to_user=target, message=message,
            status=RequestStatus.ACCEPTED if theirs else RequestStatus.PENDING,
            decided_at=now if theirs else None, using_db=conn,
        )
        if theirs is not None:
            await do_befriend(conn, from_id, to_id, now)
    return RequestOutcome(request, await load_request(theirs.id) if theirs else None)


async def load_request(request_id: int) -> FriendRequest:
    return await FriendRequest.filter(id=request_id).select_related("from_user", "to_user").get()


async def _request_for_recipient(user_id: str, request_id: int) -> FriendRequest:
    """The request, if the user may decide it. Someone who is neither party gets NotFoundError,
    so request ids reveal nothing."""
    request = (await FriendRequest.get_or_none(id=request_id)
               if 0 < request_id <= PK_MAX else None)
    if request is None or user_id not in (request.from_user_id, request.to_user_id):
        raise NotFoundError(f"friend request {request_id} not found")
    if request.to_user_id != user_id:
        raise ForbiddenError("only the recipient may accept or reject a friend request")
    return request


def _check_pending(request: FriendRequest) -> None:
    if request.status != RequestStatus.PENDING:
        raise InvalidParameterError(
            f"friend request {request.id} is already {request.status.value}")


async def accept_friend_request(user_id: str, request_id: int) -> FriendRequest:
    """Accept a pending request sent to the user: the two become friends."""
    request = await _request_for_recipient(user_id, request_id)
    async with in_transaction() as conn:
        users = await lock_users(conn, request.from_user_id, user_id)
        request = await FriendRequest.filter(id=request.id).using_db(conn).get()
        _check_pending(request)
        _ = _live(users, request.from_user_id)
        await check_not_blocked(user_id, request.from_user_id, conn)
        await do_befriend(conn, request.from_user_id, user_id, utcnow())
    return await load_request(request.id)


async def reject_friend_request(user_id: str, request_id: int) -> FriendRequest:
    """Reject a pending request sent to the user."""
    request = await _request_for_recipient(user_id, request_id)
    async with in_transaction() as conn:
        _ = await lock_users(conn, request.from_user_id, user_id)
        request = await FriendRequest.filter(id=request.id).using_db(conn).get()
        _check_pending(request)
        request.status, request.decided_at = RequestStatus.REJECTED, utcnow()
        await request.save(using_db=conn, update_fields=["status", "decided_at"])
    return await load_request(request.id)


async def list_friend_requests(
    user_id: str, direction: str | None = None, status: str | None = None
) -> list[FriendRequest]:
    """Requests to (`incoming`) or from (`outgoing`) the user, or both; newest first."""
    query = FriendRequest.all()
    if direction is None:
        query = query.filter(Q(from_user_id=user_id) | Q(to_user_id=user_id))
    elif direction == RequestDirection.INCOMING:
        query = query.filter(to_user_id=user_id)
    elif direction == RequestDirection.OUTGOING:
        query = query.filter(from_user_id=user_id)
    else:
        raise InvalidParameterError("direction must be 'incoming' or 'outgoing'")
    if status is not None:
        if status not in {s.value for s in RequestStatus}:
            raise InvalidParameterError("status must be 'pending', 'accepted' or 'rejected'")
        query = query.filter(status=status)
    return list(await query.select_related("from_user", "to_user").order_by("-id"))


def request_info(request: FriendRequest) -> dict[str, Any]:
    """The HTTP shape of a request (`from_user`/`to_user` loaded)."""
    return {
        "id": request.id,
        "from": user_summary(request.from_user),
        "to": user_summary(request.to_user),
        "message": request.message,
        "status": request.status.value,
        "created_at": request.created_at.isoformat(),
        "decided_at": request.decided_at.isoformat() if request.decided_at else None,
    }


# --- events on im/u/{user} (published by the adapters after commit) ---------------------------


def request_event(request: FriendRequest) -> FriendRequestEvent:
    """To the recipient of a new pending request."""
    return FriendRequestEvent.model_validate({
        "type": "friend_request", "request_id": request.id,
        "from": user_summary(request.from_user), "message": request.message,
        "created_at": epoch_ms(request.created_at)})


def _decided_ms(request: FriendRequest) -> int:
    return epoch_ms(request.decided_at or utcnow())


def accepted_event(request: FriendRequest) -> FriendRequestAcceptedEvent:
    """To the sender of a request that was accepted (`user`: who accepted)."""
    return FriendRequestAcceptedEvent.model_validate({
        "type": "friend_request_accepted", "request_id": request.id,
        "user": user_summary(request.to_user), "decided_at": _decided_ms(request)})


def rejected_event(request: FriendRequest) -> FriendRequestRejectedEvent:
    """To the sender of a request that its recipient rejected."""
    return FriendRequestRejectedEvent(
        type="friend_request_rejected", request_id=request.id, user_id=request.to_user_id,
        decided_at=_decided_ms(request))


def removed_event(by_id: str) -> FriendRemovedEvent:
    """To the friend that `by_id` removed."""
    return FriendRemovedEvent(type="friend_removed", user_id=by_id)


# --- blocks ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BlockOutcome:
    block: Block
    created: bool


async def block_user(user_id: str, target_id: str) -> BlockOutcome:
    """Block a live user (idempotent: `created` is False if already blocked). Ends the
    friendship and rejects the pending requests between the two. Nobody is told."""
    check_id_ref(target_id)
    if target_id == user_id:
        raise InvalidParameterError("you cannot block yourself")
    async with in_transaction() as conn:
        users = await lock_users(conn, user_id, target_id)
        target = _live(users, target_id)
        existing = await Block.filter(user_id=user_id, blocked_id=target_id).using_db(
            conn).select_related("blocked").first()
        if existing is not None:
            return BlockOutcome(existing, created=False)
        block = await Block.create(user=users[user_id], blocked=target, using_db=conn)
        _ = await do_unfriend(conn, user_id, target_id)
        await FriendRequest.filter(
            _request_pair(user_id, target_id), status=RequestStatus.PENDING
        ).using_db(conn).update(status=RequestStatus.REJECTED, decided_at=utcnow())
    return BlockOutcome(block, created=True)


async def unblock_user(user_id: str, target_id: str) -> None:
    """Lift a block (a friendship it ended stays ended); NotFoundError if there is none."""
    check_id_ref(target_id)
    if not await Block.filter(user_id=user_id, blocked_id=target_id).delete():
        raise NotFoundError(f"you have not blocked {target_id}")


def block_info(block: Block) -> dict[str, Any]:
    return {"user": user_summary(block.blocked), "created_at": block.created_at.isoformat()}


async def list_blocks(user_id: str) -> list[dict[str, Any]]:
    """The users the user blocked, newest first."""
    rows = await Block.filter(user_id=user_id).select_related("blocked").order_by("-id")
    return [block_info(b) for b in rows]


async def has_blocked(user_id: str, other_id: str) -> bool:
    return await Block.filter(user_id=user_id, blocked_id=other_id).exists()

"""Friendships: the table, the lock every write between two users takes first, and the reads and
writes on friendships. Requests are in models/friend_request.py, blocks in models/block.py; the
use cases that span them (a request that befriends, a block that unfriends) are composed in
actions/friends.py.

A friendship is two rows, one per direction. Ending it deletes both, and the database takes each
user out of the other's friend groups (a group member references the friendship row, ON DELETE
CASCADE), so this module knows nothing of friend groups.

Every write between two users first row-locks both users' rows (`lock_users`: PostgreSQL `FOR NO
KEY UPDATE`, in id order, which does not hold up inserts that merely reference the users), so
requests, accepts, removals, blocks and friend-group additions involving the same users run one
after the other. SQLite already runs the process's transactions one at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from tortoise import fields
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import Q
from tortoise.models import Model
from tortoise.transactions import in_transaction

from contract.errors import NotFoundError, UserNotFoundError
from models.user import User, check_id_ref

PK_MAX = 2**63 - 1  # ids beyond a BIGINT name nothing; never send them to the database


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


async def lock_users(conn: BaseDBAsyncClient, *user_ids: str) -> dict[str, User]:
    """Row-lock the users that exist (deleted or not), in id order; the rows by id."""
    rows = await (User.filter(id__in=sorted(set(user_ids))).using_db(conn).order_by("id")
                  .select_for_update(no_key=True))
    return {u.id: u for u in rows}


def check_live(users: dict[str, User], user_id: str) -> User:
    """The user among `users` (from `lock_users`); UserNotFoundError if absent or deleted."""
    user = users.get(user_id)
    if user is None or user.deleted_at is not None:
        raise UserNotFoundError(f"user {user_id} not found")
    return user


def _pair(a: str, b: str) -> Q:
    return Q(Q(user_id=a, friend_id=b), Q(user_id=b, friend_id=a), join_type=Q.OR)


async def friend_ids(user_id: str) -> list[str]:
    rows = await Friendship.filter(user_id=user_id).values_list("friend_id", flat=True)
    return sorted(str(r) for r in rows)


async def friend_ids_among(
    user_id: str, candidate_ids: Sequence[str], conn: BaseDBAsyncClient | None = None
) -> set[str]:
    """Which of `candidate_ids` are friends of `user_id`."""
    return set(await friendship_ids(user_id, candidate_ids, conn))


async def friendship_ids(
    user_id: str, candidate_ids: Sequence[str], conn: BaseDBAsyncClient | None = None
) -> dict[str, int]:
    """For each of `candidate_ids` who is a friend of `user_id`, the id of the row
    (`user_id`, friend): what a friend-group member references."""
    if not candidate_ids:
        return {}
    rows = await Friendship.filter(user_id=user_id, friend_id__in=list(candidate_ids)).using_db(
        conn).values_list("friend_id", "id")
    return {str(friend): int(row_id) for friend, row_id in rows}


async def are_friends(conn: BaseDBAsyncClient, a: str, b: str) -> bool:
    return await Friendship.filter(user_id=a, friend_id=b).using_db(conn).exists()


async def do_befriend(conn: BaseDBAsyncClient, a: str, b: str, now: datetime) -> None:
    """Make a and b friends (idempotent). The caller holds both users' locks and has checked
    the rules (and settles the requests between them)."""
    await Friendship.bulk_create(
        [Friendship(user_id=a, friend_id=b, created_at=now),
         Friendship(user_id=b, friend_id=a, created_at=now)],
        ignore_conflicts=True, using_db=conn,
    )


async def do_unfriend(conn: BaseDBAsyncClient, a: str, b: str) -> bool:
    """End the friendship of a and b, if any; the database drops each from the other's friend
    groups. True if they were friends. The caller holds both users' locks."""
    return bool(await Friendship.filter(_pair(a, b)).using_db(conn).delete())


async def list_friendships(user_id: str) -> list[Friendship]:
    """The user's rows, each with `friend` loaded (unordered: callers order by what they show)."""
    return list(await Friendship.filter(user_id=user_id).select_related("friend"))


async def get_friendship(user_id: str, friend_id: str) -> Friendship:
    """The row (user, friend), with `friend` loaded; NotFoundError if they are not friends,
    UserNotFoundError if there is no such live user."""
    check_id_ref(friend_id)
    row = await Friendship.filter(user_id=user_id, friend_id=friend_id).select_related(
        "friend").first()
    if row is None:
        if not await User.filter(id=friend_id, deleted_at=None).exists():
            raise UserNotFoundError(f"user {friend_id} not found")
        raise NotFoundError(f"{friend_id} is not your friend")
    return row


async def remove_friend(user_id: str, friend_id: str) -> None:
    """End a friendship, both ways; NotFoundError if they are not friends."""
    check_id_ref(friend_id)
    async with in_transaction() as conn:
        users = await lock_users(conn, user_id, friend_id)
        if not await do_unfriend(conn, user_id, friend_id):
            _ = check_live(users, friend_id)
            raise NotFoundError(f"{friend_id} is not your friend")

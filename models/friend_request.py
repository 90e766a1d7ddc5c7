"""Friend requests: the table, the rules on a request's message and state, and the reads and
writes on requests. The use cases (send, accept, reject) are composed in actions/friends.py,
which locks both users first (models/friendship.py `lock_users`).

Rules:

- A friend request goes to another live user, with a message of at most 200 characters. It is
  refused when the two are already friends (1007), when the sender's earlier request to that user
  is still pending (1011), or when either of them blocked the other (1009). When the other user's
  request to the sender is pending, sending one back accepts it: both requests become `accepted`
  and the two are friends.
- Only the recipient accepts or rejects a request, and only while it is pending. Accepting makes
  the two friends and accepts every other pending request between them. To anyone but its two
  users a request does not exist.
- Blocking rejects the pending requests between the two.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from tortoise import fields
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import Q
from tortoise.models import Model

from contract.errors import ForbiddenError, InvalidParameterError, NotFoundError
from models.friendship import PK_MAX
from models.user import TEXT_CONTROLS, User, check_text

REQUEST_MESSAGE_MAX = 200


class RequestStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class RequestDirection(StrEnum):
    INCOMING = "incoming"
    OUTGOING = "outgoing"


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


def check_request_message(message: str) -> str:
    if len(message) > REQUEST_MESSAGE_MAX:
        raise InvalidParameterError(f"message must be at most {REQUEST_MESSAGE_MAX} characters")
    return check_text(message, "message", TEXT_CONTROLS).strip()


def _pair(a: str, b: str) -> Q:
    return Q(Q(from_user_id=a, to_user_id=b), Q(from_user_id=b, to_user_id=a), join_type=Q.OR)


async def pending_between(conn: BaseDBAsyncClient, a: str, b: str) -> list[FriendRequest]:
    """The pending requests between a and b, either way, oldest first."""
    return list(await FriendRequest.filter(_pair(a, b), status=RequestStatus.PENDING).using_db(
        conn).order_by("id"))


async def do_create_request(
    conn: BaseDBAsyncClient, from_user: User, to_user: User, message: str,
    accepted_at: datetime | None,
) -> FriendRequest:
    """Store a request: pending, or already accepted at `accepted_at` (a request back)."""
    return await FriendRequest.create(
        from_user=from_user, to_user=to_user, message=message,
        status=RequestStatus.PENDING if accepted_at is None else RequestStatus.ACCEPTED,
        decided_at=accepted_at, using_db=conn,
    )


async def do_settle_pending(
    conn: BaseDBAsyncClient, a: str, b: str, status: RequestStatus, now: datetime
) -> None:
    """Decide every pending request between a and b (accepted when they become friends,
    rejected by a block). The caller holds both users' locks."""
    await FriendRequest.filter(_pair(a, b), status=RequestStatus.PENDING).using_db(conn).update(
        status=status, decided_at=now)


async def do_reject(conn: BaseDBAsyncClient, request: FriendRequest, now: datetime) -> None:
    request.status, request.decided_at = RequestStatus.REJECTED, now
    await request.save(using_db=conn, update_fields=["status", "decided_at"])


async def request_for_recipient(user_id: str, request_id: int) -> FriendRequest:
    """The request, if the user may decide it. Someone who is neither party gets NotFoundError,
    so request ids reveal nothing; the sender gets ForbiddenError."""
    request = (await FriendRequest.get_or_none(id=request_id)
               if 0 < request_id <= PK_MAX else None)
    if request is None or user_id not in (request.from_user_id, request.to_user_id):
        raise NotFoundError(f"friend request {request_id} not found")
    if request.to_user_id != user_id:
        raise ForbiddenError("only the recipient may accept or reject a friend request")
    return request


async def reload_pending(conn: BaseDBAsyncClient, request_id: int) -> FriendRequest:
    """The request as it is now (under the users' locks); InvalidParameterError unless it is
    still pending."""
    request = await FriendRequest.filter(id=request_id).using_db(conn).get()
    if request.status != RequestStatus.PENDING:
        raise InvalidParameterError(
            f"friend request {request.id} is already {request.status.value}")
    return request


async def load_request(request_id: int) -> FriendRequest:
    """A request with both users loaded."""
    return await FriendRequest.filter(id=request_id).select_related("from_user", "to_user").get()


async def list_friend_requests(
    user_id: str, direction: str | None = None, status: str | None = None
) -> list[FriendRequest]:
    """Requests to (`incoming`) or from (`outgoing`) the user, or both, with both users
    loaded; newest first."""
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

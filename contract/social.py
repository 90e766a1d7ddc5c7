"""Friends on the wire: what the friend, friend-request, block and friend-group routes answer.

The personal events these routes publish (`friend_request`, `friend_request_accepted`,
`friend_request_rejected`, `friend_removed`) are in contract/events.py; a user in any of these
shapes is the public `UserProfile` of contract/http.py (never an email or phone). Times here are
ISO 8601 strings, as elsewhere in HTTP; request and group ids are integers.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from contract.http import Shape, UserProfile

RequestStatusName = Literal["pending", "accepted", "rejected"]


class FriendGroupRef(Shape):
    """One of the caller's friend groups, as a friend's entry names it."""

    id: int
    name: str


class FriendEntry(Shape):
    """GET /api/friends (by name) and GET /api/friends/{id}: a friend, since when, and which
    of the caller's groups they are in (oldest group first)."""

    user: UserProfile
    since: str
    groups: list[FriendGroupRef]


class FriendRequestInfo(Shape):
    """A friend request as its two users see it: POST /api/friends/requests, the request
    list (newest first), and accepting or rejecting one."""

    model_config = ConfigDict(populate_by_name=True)

    id: int
    from_: UserProfile = Field(alias="from")
    to: UserProfile
    message: str
    status: RequestStatusName
    created_at: str
    decided_at: str | None


class UserRef(Shape):
    """DELETE /api/friends/{id} and DELETE /api/blocks/{id}: the user it was about."""

    user_id: str


class BlockEntry(Shape):
    """POST /api/blocks and GET /api/blocks (newest first): whom the caller blocked, and when."""

    user: UserProfile
    created_at: str


class FriendGroupInfo(Shape):
    """GET /api/friends/groups (oldest first), and creating or renaming a group."""

    id: int
    name: str
    member_count: int
    created_at: str


class FriendGroupDetail(FriendGroupInfo):
    """GET /api/friends/groups/{id}: the group with its members, in the order they were added."""

    members: list[UserProfile]


class FriendGroupDeleted(Shape):
    """DELETE /api/friends/groups/{id}."""

    id: int


class FriendGroupMembersAdded(Shape):
    """POST /api/friends/groups/{id}/members: the friends added, in the order given."""

    group_id: int
    added: list[str]


class FriendGroupMemberRemoved(Shape):
    """DELETE /api/friends/groups/{id}/members/{user_id}."""

    group_id: int
    removed: list[str]

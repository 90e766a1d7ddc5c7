"""The typed table behind the OpenAPI document (api/openapi.py): one row per (method, path) the
API serves, keyed exactly as the Starlette route spells it, convertors included.

Each row names the Python types the route really uses: its body model (the one it hands to
`parse_body`), the type of the `data` its action returns, its auth, its query parameters, the
errors it can raise beyond those every route of its kind can. api/openapi.py refuses to build a
document when a served route has no row or a row names a route nobody serves
(tests/api/test_openapi.py), so the table cannot drift from the routes. It holds no schema: the
schemas come from the models.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from api.openapi_hooks import HOOK_OPERATIONS
from api.openapi_hooks_rabbitmq import RABBITMQ_HOOK_OPERATIONS
from api.openapi_messages import MESSAGE_OPERATIONS
from api.openapi_ops import Op, Query, int_in, limit_query
from api.openapi_reach import REACH_OPERATIONS
from api.routes import governance, threadlist, threads
from api.schemas import (
    AddMembersBody,
    FriendGroupBody,
    FriendGroupMembersBody,
    FriendRequestBody,
    LoginBody,
    ProfileBody,
    ReadBody,
    RefreshBody,
    RegisterBody,
    RuleBody,
    UserRefBody,
    VerifyCodeBody,
)
from contract import accounts as acc
from contract import governance as gov
from contract import membership as mem
from contract import msgsearch as msr
from contract import receipts as rc
from contract import social as soc
from contract import threads as thr
from contract.errors import (
    AccountBannedError,
    AlreadyExistsError,
    AlreadyFriendsError,
    AlreadyMemberError,
    BlockedError,
    CannotActOnOwnerError,
    CodeInvalidError,
    ForbiddenError,
    InvalidParameterError,
    InvitationDecidedError,
    LoginFailedError,
    MailFailedError,
    MessageNotFoundError,
    NotAdminError,
    NotAMemberError,
    NotFoundError,
    NotOwnerError,
    RateLimitedError,
    RequestExistsError,
    RoomFullError,
    ThreadDissolvedError,
    ThreadNotFoundError,
    TokenExpiredError,
    TokenInvalidError,
    UploadNotFoundError,
    UploadTooLargeError,
    UserExistsError,
    UserNotFoundError,
)
from contract.http import (
    Health,
    MemberSettings,
    PresenceView,
    ReadResult,
    ThreadCounts,
    UserProfile,
    UserSelf,
    WebAppConfig,
)
from contract.rooms import RoomListItem
from contract.stats import AdminStats
from contract.uploads import UploadView
from models import msgsearch as ms
from models import rooms, search
from models import threadlist as tl
from models.membership import INVITATIONS_LIMIT_MAX

_FLAG = Literal["true", "false", "1", "0"]
_THREAD = (ThreadNotFoundError, NotAMemberError)
_GOVERN = (*_THREAD, NotAdminError, NotOwnerError, CannotActOnOwnerError, ThreadDissolvedError,
           ForbiddenError)
_NAMED = (UserNotFoundError,)
_T = "/api/threads/{thread_id:id}"
_MS = int_in(0, ms.EPOCH_MS_MAX)
_SEARCH = (Query("q", Annotated[str, Field(min_length=1, max_length=ms.QUERY_MAX)],
                 "a substring of the body (3 characters or more, except in a thread search)",
                 required=True),
           Query("sender_id", str, "only this sender's"), Query("type", str, "only this msg_type"),
           Query("from", _MS, "created at or after (epoch ms)"),
           Query("to", _MS, "created at or before (epoch ms)"),
           limit_query(ms.LIMIT_DEFAULT, ms.LIMIT_MAX))
OPERATIONS: dict[tuple[str, str], Op] = {
    # accounts
    ("POST", "/api/auth/register"): Op(
        "Register (or restore a deleted account)", "none", RegisterBody, acc.SignedIn, (201, 200),
        errors=(UserExistsError, CodeInvalidError, RateLimitedError)),
    ("POST", "/api/auth/login"): Op(
        "Log in with a user id, email or phone", "none", LoginBody, acc.SignedIn,
        errors=(LoginFailedError, AccountBannedError, CodeInvalidError, RateLimitedError)),
    ("POST", "/api/auth/verify-code"): Op(
        "Mail a 6-digit email verification code", "none", VerifyCodeBody, acc.CodeSent,
        errors=(UserExistsError, UserNotFoundError, RateLimitedError, MailFailedError)),
    ("POST", "/api/auth/refresh"): Op(
        "Rotate the refresh token for a new access token", "none", RefreshBody, acc.TokenBundle,
        errors=(TokenInvalidError, TokenExpiredError, AccountBannedError)),
    ("POST", "/api/auth/logout"): Op("End this session", data=None),
    # me
    ("GET", "/api/me"): Op("The caller's own profile", data=UserSelf),
    ("PATCH", "/api/me"): Op("Change the caller's profile", body=ProfileBody, data=UserSelf,
                             errors=(LoginFailedError, UserExistsError, CodeInvalidError)),
    ("DELETE", "/api/me"): Op("Delete the caller's account (restorable)",
                              data=acc.AccountDeleted),
    ("GET", "/api/me/sessions"): Op("The caller's live sessions", data=list[acc.SessionView]),
    ("DELETE", "/api/me/sessions/{session_id:id}"): Op(
        "Sign one session out", data=acc.SessionEnded, errors=(NotFoundError,)),
    # users
    ("GET", "/api/users"): Op(
        "Search users", data=acc.UserPage, query=(
            Query("q", Annotated[str, Field(min_length=1, max_length=search.QUERY_MAX)],
                  "a user id, email, phone or part of a name", required=True),
            Query("page", int_in(1, search.PAGE_MAX), "page number (default 1)"),
            Query("page_size", int_in(1, search.PAGE_SIZE_MAX),
                  f"matches per page (default {search.PAGE_SIZE_DEFAULT})"))),
    ("GET", "/api/users/{user_id:id}"): Op("A user as the caller sees them", data=acc.UserView,
                                           errors=_NAMED),
    # uploads (multipart body, field `file`; the download is the file's bytes or a 302 to them)
    ("POST", "/api/uploads"): Op(
        "Upload a file (multipart/form-data, field `file`)", data=UploadView, statuses=(201,),
        errors=(InvalidParameterError, UploadTooLargeError)),
    ("GET", "/api/uploads/{upload_id:id}"): Op(
        "Download an upload: its bytes, or a 302 to a presigned URL", data=None,
        errors=(UploadNotFoundError,)),
    ("GET", "/api/users/{user_id:id}/presence"): Op(
        "A user's presence", data=PresenceView, errors=(*_NAMED, ForbiddenError)),
    # friends and blocks
    ("POST", "/api/friends/requests"): Op(
        "Send a friend request", body=FriendRequestBody, data=soc.FriendRequestInfo,
        statuses=(201,), errors=(*_NAMED, AlreadyFriendsError, RequestExistsError, BlockedError)),
    ("GET", "/api/friends/requests"): Op(
        "The caller's friend requests", data=list[soc.FriendRequestInfo], query=(
            Query("direction", Literal["incoming", "outgoing"], "default: both"),
            Query("status", soc.RequestStatusName, "default: any"))),
    ("POST", "/api/friends/requests/{request_id:num}/accept"): Op(
        "Accept a friend request", data=soc.FriendRequestInfo,
        errors=(NotFoundError, ForbiddenError, AlreadyFriendsError)),
    ("POST", "/api/friends/requests/{request_id:num}/reject"): Op(
        "Reject a friend request", data=soc.FriendRequestInfo,
        errors=(NotFoundError, ForbiddenError)),
    ("GET", "/api/friends"): Op("The caller's friends", data=list[soc.FriendEntry]),
    ("GET", "/api/friends/{user_id:id}"): Op("One friend", data=soc.FriendEntry,
                                             errors=(NotFoundError,)),
    ("DELETE", "/api/friends/{user_id:id}"): Op("Unfriend", data=soc.UserRef,
                                                errors=(NotFoundError,)),
    ("POST", "/api/blocks"): Op("Block a user", body=UserRefBody, data=soc.BlockEntry,
                                statuses=(201, 200), errors=_NAMED),
    ("GET", "/api/blocks"): Op("The users the caller blocked", data=list[soc.BlockEntry]),
    ("DELETE", "/api/blocks/{user_id:id}"): Op("Unblock a user", data=soc.UserRef,
                                               errors=(NotFoundError,)),
    # friend groups
    ("GET", "/api/friends/groups"): Op("The caller's friend groups",
                                       data=list[soc.FriendGroupInfo]),
    ("POST", "/api/friends/groups"): Op("Create a friend group", body=FriendGroupBody,
                                        data=soc.FriendGroupInfo, statuses=(201,),
                                        errors=(AlreadyExistsError,)),
    ("GET", "/api/friends/groups/{group_id:num}"): Op(
        "A friend group with its members", data=soc.FriendGroupDetail, errors=(NotFoundError,)),
    ("PATCH", "/api/friends/groups/{group_id:num}"): Op(
        "Rename a friend group", body=FriendGroupBody, data=soc.FriendGroupInfo,
        errors=(NotFoundError, AlreadyExistsError)),
    ("DELETE", "/api/friends/groups/{group_id:num}"): Op(
        "Delete a friend group", data=soc.FriendGroupDeleted, errors=(NotFoundError,)),
    ("GET", "/api/friends/groups/{group_id:num}/members"): Op(
        "A friend group's members", data=list[UserProfile], errors=(NotFoundError,)),
    ("POST", "/api/friends/groups/{group_id:num}/members"): Op(
        "Add friends to a group", body=FriendGroupMembersBody,
        data=soc.FriendGroupMembersAdded, errors=(NotFoundError, AlreadyExistsError)),
    ("DELETE", "/api/friends/groups/{group_id:num}/members/{user_id:id}"): Op(
        "Take a friend out of a group", data=soc.FriendGroupMemberRemoved,
        errors=(NotFoundError,)),
    # threads: creating, members, the list
    ("POST", "/api/threads"): Op(
        "Create a direct thread, a group or a room", body=threads.NewThreadBody,
        data=thr.CreatedThread, statuses=(201, 200),
        errors=(*_NAMED, BlockedError, ForbiddenError)),
    ("GET", "/api/threads"): Op(
        "A page of the caller's threads", data=list[thr.ThreadListItem], query=(
            limit_query(tl.PAGE_DEFAULT, tl.PAGE_MAX),
            Query("after", str, "the last thread_id of the previous page"),
            Query("archived", _FLAG, "archived threads only"),
            Query("include_left", _FLAG, "with the threads the caller left or was removed from"),
            Query("unread", _FLAG, "threads with something unread only"),
            Query("requests", _FLAG, "message requests only"),
            Query("q", Annotated[str, Field(max_length=tl.QUERY_MAX)], "a name to look for")),
        errors=(ThreadNotFoundError,)),
    ("GET", "/api/threads/direct/{user_id:id}"): Op(
        "The caller's direct thread with a user", data=thr.ThreadInfo,
        errors=(ThreadNotFoundError,)),
    ("GET", _T): Op("A thread's details", data=thr.ThreadInfo, errors=_THREAD),
    ("GET", f"{_T}/members"): Op("A thread's current members", data=list[thr.MemberView],
                                 errors=_THREAD),
    ("PATCH", f"{_T}/settings"): Op("Change the caller's own settings of a thread",
                                    body=threadlist.SettingsBody, data=MemberSettings,
                                    errors=_THREAD),
    ("POST", f"{_T}/accept"): Op("Accept a message request", data=thr.ThreadInfo,
                                 errors=(*_THREAD, ForbiddenError)),
    ("POST", f"{_T}/members"): Op(
        "Add members (or invite them)", body=AddMembersBody, data=mem.MembersAdded,
        errors=(*_GOVERN, *_NAMED, AlreadyMemberError, RoomFullError, BlockedError)),
    ("DELETE", f"{_T}/members/{{user_id:id}}"): Op(
        "Remove a member, or leave", data=mem.MemberRemoved, errors=_GOVERN),
    ("POST", f"{_T}/join"): Op(
        "Join a public group or a room (or ask to)", data=mem.JoinResult,
        errors=(ThreadNotFoundError, ForbiddenError, ThreadDissolvedError, AlreadyMemberError,
                RoomFullError)),
    ("GET", f"{_T}/invitations"): Op(
        "A thread's invitations and join requests", data=list[mem.InvitationInfo], query=(
            Query("status", mem.InvitationStatusName, "default: any"),
            limit_query(50, INVITATIONS_LIMIT_MAX),
            Query("before_id", int_in(1), "the last invitation_id of the previous page")),
        errors=(*_THREAD, NotAdminError)),
    ("POST", f"{_T}/invitations/{{invitation_id:num}}/approve"): Op(
        "Approve an invitation or join request", data=mem.InvitationDecided,
        errors=(*_GOVERN, NotFoundError, InvitationDecidedError, RoomFullError,
                AlreadyMemberError)),
    ("POST", f"{_T}/invitations/{{invitation_id:num}}/reject"): Op(
        "Reject an invitation or join request", data=mem.InvitationDecided,
        errors=(*_GOVERN, NotFoundError, InvitationDecidedError)),
    # governance
    ("PATCH", _T): Op("Change a thread's looks and settings", body=governance.ThreadPatchBody,
                      data=gov.ThreadUpdated, errors=_GOVERN),
    ("DELETE", _T): Op("Dissolve a group or room, or delete a direct thread",
                       data=gov.ThreadEnded, errors=_GOVERN),
    ("POST", f"{_T}/admins"): Op("Make members admins", body=governance.UserIdsBody,
                                 data=gov.AdminsChanged, errors=_GOVERN),
    ("DELETE", f"{_T}/admins/{{user_id:id}}"): Op("Demote an admin", data=gov.AdminsChanged,
                                                  errors=_GOVERN),
    ("POST", f"{_T}/owner"): Op("Hand the thread to another member", body=governance.OwnerBody,
                                data=gov.OwnerChanged, errors=_GOVERN),
    ("POST", f"{_T}/mutes"): Op("Mute members", body=governance.MuteBody,
                                data=gov.MutesChanged, errors=_GOVERN),
    ("DELETE", f"{_T}/mutes/{{user_id:id}}"): Op("Unmute a member", data=gov.Unmuted,
                                                 errors=_GOVERN),
    ("PUT", f"{_T}/nicknames/{{user_id:id}}"): Op(
        "Set or clear a member's nickname", body=governance.NicknameBody,
        data=gov.NicknameSet, errors=_GOVERN),
    ("GET", f"{_T}/announcements"): Op("A thread's announcements", data=list[gov.Announcement],
                                       errors=_THREAD),
    ("POST", f"{_T}/announcements"): Op(
        "Post an announcement", body=governance.AnnouncementBody, data=gov.AnnouncementPosted,
        statuses=(201,), errors=_GOVERN),
    ("DELETE", f"{_T}/announcements/{{announcement_id:num}}"): Op(
        "Remove an announcement", data=gov.AnnouncementRemoved, errors=(*_GOVERN, NotFoundError)),
    # rooms
    ("GET", "/api/rooms"): Op("Find chat rooms", data=list[RoomListItem], query=(
        Query("near", Annotated[str, Field(pattern=r"^-?[0-9.]+,-?[0-9.]+$")],
              "LAT,LNG: nearest first (otherwise by most members)"),
        Query("radius_km", Annotated[float, Field(gt=0, le=rooms.RADIUS_KM_MAX)],
              f"with `near` (default {rooms.RADIUS_KM_DEFAULT:g})"),
        limit_query(rooms.ROOMS_LIMIT_DEFAULT, rooms.ROOMS_LIMIT_MAX))),
    # messages
    **MESSAGE_OPERATIONS,
    **REACH_OPERATIONS,
    ("POST", f"{_T}/read"): Op("Move the caller's read mark", body=ReadBody, data=ReadResult,
                               errors=_THREAD),
    ("GET", "/api/sync"): Op("Unread counts of every thread", data=list[ThreadCounts]),
    ("GET", f"{_T}/messages/search"): Op(
        "Search a thread's messages, newest first", data=msr.ThreadSearchPage,
        query=(*_SEARCH, Query("before_seq", int_in(0), "matches before this seq")),
        errors=_THREAD),
    ("GET", "/api/search/messages"): Op(
        "Search the messages of every thread the caller may read, newest first",
        data=msr.MessageSearchPage,
        query=(*_SEARCH, Query("before_id", str, "matches after this message of a page"))),
    # read state and receipts (contract/receipts.py)
    ("POST", f"{_T}/delivered"): Op("Move the caller's delivered mark", body=ReadBody,
                                    data=rc.DeliveredResult, errors=_THREAD),
    ("GET", f"{_T}/messages/{{message_id:id}}/receipts"): Op(
        "Who read and who received a message", data=rc.MessageReceipts,
        errors=(*_THREAD, MessageNotFoundError)),
    ("POST", "/api/threads/read-all"): Op("Mark every thread of the caller read",
                                          data=list[rc.ReadAllMoved]),
    # admin
    ("GET", "/api/admin/stats"): Op("Server-wide figures", "admin", data=AdminStats),
    ("POST", "/api/admin/users/{user_id:id}/ban"): Op("Ban a user", "admin",
                                                      data=acc.BanResult, errors=_NAMED),
    ("DELETE", "/api/admin/users/{user_id:id}/ban"): Op("Lift a ban", "admin",
                                                        data=acc.BanStatus, errors=_NAMED),
    ("GET", "/api/admin/users/{user_id:id}/acl"): Op("A user's effective broker ACL", "admin",
                                                     data=list[acc.AclLine]),
    ("GET", "/api/admin/acl/rules"): Op("The extra broker ACL rules", "admin",
                                        data=list[acc.AclRuleView]),
    ("POST", "/api/admin/acl/rules"): Op("Add a broker ACL rule", "admin", RuleBody,
                                         acc.AclRuleView, (201,), errors=_NAMED),
    ("DELETE", "/api/admin/acl/rules/{rule_id:num}"): Op(
        "Remove a broker ACL rule", "admin", data=acc.RuleDeleted, errors=(NotFoundError,)),
    # the broker hooks
    **HOOK_OPERATIONS,
    **RABBITMQ_HOOK_OPERATIONS,
    # operations
    ("GET", "/health"): Op("Liveness: the database answers", "none", data=Health,
                           answers=((503, 5003, "unavailable"),)),
    ("GET", "/metrics"): Op("Prometheus metrics", "none", raw="prometheus"),
    ("GET", "/openapi.json"): Op("This OpenAPI document", "none", raw="openapi"),
    ("GET", "/docs"): Op("The API docs page (Swagger UI)", "none", raw="html"),
    ("GET", "/app/config.json"): Op("Where the web client finds the MQTT WebSocket listener",
                                    "none", data=WebAppConfig),
}

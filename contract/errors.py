"""Domain errors: every rule the models enforce fails with one of these.

Each carries a stable snake_case `code` and its number (docs/design.md section 5), so the HTTP
adapter and the MQTT bridge report the same failure the same way. They know nothing of HTTP status.

    MqimError
    ├── InvalidParameterError (1001) ── ContentInvalidError (4003)
    ├── ForbiddenError (1004) ── NotAMemberError (3003), NotOwnerError (3006), NotAdminError (3007),
    │                            ThreadDissolvedError (3002), CannotActOnOwnerError (3008),
    │                            MutedInThreadError (3010), BlockedError (1009),
    │                            WindowPassedError (4004), NotYourMessageError (4005),
    │                            PollClosedError (4006)
    ├── NotFoundError (1005) ── UserNotFoundError (2006), ThreadNotFoundError (3001),
    │                           MessageNotFoundError (4001), UploadNotFoundError (4007)
    ├── AuthError ── TokenInvalidError (2001), TokenExpiredError (2002), LoginFailedError (2005),
    │                AccountBannedError (2009)
    ├── ConflictError ── UserExistsError (2007), AlreadyMemberError (3005),
    │                    AlreadyFriendsError (1007), AlreadyExistsError (1010),
    │                    RequestExistsError (1011), ClientMsgIdConflictError (4002),
    │                    RoomFullError (3011), InvitationDecidedError (3012)
    ├── RateLimitedError (1006)
    ├── PayloadTooLargeError (1012) ── UploadTooLargeError (4008)
    └── InternalError (5000)
"""

from __future__ import annotations

from enum import StrEnum

from contract.events import ErrorEvent


class ErrorCode(StrEnum):
    INVALID_PARAMETER = "invalid_parameter"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    RATE_LIMITED = "rate_limited"
    TOKEN_INVALID = "token_invalid"  # noqa: S105  # an error name, not a secret
    TOKEN_EXPIRED = "token_expired"  # noqa: S105  # an error name, not a secret
    LOGIN_FAILED = "login_failed"
    USER_NOT_FOUND = "user_not_found"
    USER_EXISTS = "user_exists"
    ACCOUNT_BANNED = "account_banned"
    THREAD_NOT_FOUND = "thread_not_found"
    NOT_A_MEMBER = "not_a_member"
    ALREADY_MEMBER = "already_member"
    NOT_OWNER = "not_owner"
    NOT_ADMIN = "not_admin"
    MESSAGE_NOT_FOUND = "message_not_found"
    CONTENT_INVALID = "content_invalid"
    MAIL_FAILED = "mail_failed"
    CODE_INVALID = "code_invalid"
    ALREADY_FRIENDS = "already_friends"
    REQUEST_EXISTS = "request_exists"
    BLOCKED = "blocked"
    ALREADY_EXISTS = "already_exists"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    CLIENT_MSG_ID_CONFLICT = "client_msg_id_conflict"
    THREAD_DISSOLVED = "thread_dissolved"
    CANNOT_ACT_ON_OWNER = "cannot_act_on_owner"
    MUTED_IN_THREAD = "muted_in_thread"
    ROOM_FULL = "room_full"
    INVITATION_DECIDED = "invitation_decided"
    UPLOAD_NOT_FOUND = "upload_not_found"
    UPLOAD_TOO_LARGE = "upload_too_large"
    WINDOW_PASSED = "window_passed"
    NOT_YOUR_MESSAGE = "not_your_message"
    POLL_CLOSED = "poll_closed"
    INTERNAL_ERROR = "internal_error"


class MqimError(Exception):
    """A failure a client can be told about: `number` and `code` are stable, `msg` is for humans."""

    code: ErrorCode = ErrorCode.INVALID_PARAMETER
    number: int = 1001

    def __init__(self, msg: str) -> None:
        super().__init__(msg)
        self.msg = msg


class InvalidParameterError(MqimError):
    code = ErrorCode.INVALID_PARAMETER
    number = 1001


class ContentInvalidError(InvalidParameterError):
    code = ErrorCode.CONTENT_INVALID
    number = 4003


class ForbiddenError(MqimError):
    code = ErrorCode.FORBIDDEN
    number = 1004


class NotAMemberError(ForbiddenError):
    code = ErrorCode.NOT_A_MEMBER
    number = 3003

    def __init__(self, thread_id: str) -> None:
        super().__init__(f"not a member of thread {thread_id}")
        self.thread_id = thread_id


class TargetsNotMembersError(NotAMemberError):
    """3003 `not_a_member`, about the users an action names rather than the caller."""

    def __init__(self, thread_id: str, user_ids: list[str]) -> None:
        super().__init__(thread_id)
        self.msg = f"not members of thread {thread_id}: {', '.join(user_ids)}"
        self.args = (self.msg,)
        self.user_ids = user_ids


class NotOwnerError(ForbiddenError):
    code = ErrorCode.NOT_OWNER
    number = 3006


class NotAdminError(ForbiddenError):
    code = ErrorCode.NOT_ADMIN
    number = 3007


class ThreadDissolvedError(ForbiddenError):
    """The owner dissolved the group or room: it stays readable, but takes no sends or changes."""

    code = ErrorCode.THREAD_DISSOLVED
    number = 3002

    def __init__(self, thread_id: str) -> None:
        super().__init__(f"thread {thread_id} was dissolved")
        self.thread_id = thread_id


class CannotActOnOwnerError(ForbiddenError):
    """An admin acting on the owner or another admin (mute, remove), or anyone demoting the
    owner."""

    code = ErrorCode.CANNOT_ACT_ON_OWNER
    number = 3008


class MutedInThreadError(ForbiddenError):
    code = ErrorCode.MUTED_IN_THREAD
    number = 3010

    def __init__(self, thread_id: str, until: str | None) -> None:
        """`until` None: until the owner or an admin unmutes them."""
        super().__init__(f"muted in thread {thread_id} until "
                         + ("unmuted" if until is None else until))
        self.thread_id = thread_id


class BlockedError(ForbiddenError):
    """One of two users blocked the other: no friend request, no new direct thread, and no
    message in their direct thread (group threads are unaffected)."""

    code = ErrorCode.BLOCKED
    number = 1009


class WindowPassedError(ForbiddenError):
    """Too long after sending to edit or unsend (MQIM_EDIT_WINDOW, MQIM_UNSEND_WINDOW)."""

    code = ErrorCode.WINDOW_PASSED
    number = 4004


class NotYourMessageError(ForbiddenError):
    """Only the sender may do this to a message (edit)."""

    code = ErrorCode.NOT_YOUR_MESSAGE
    number = 4005


class PollClosedError(ForbiddenError):
    code = ErrorCode.POLL_CLOSED
    number = 4006


class NotFoundError(MqimError):
    code = ErrorCode.NOT_FOUND
    number = 1005


class UserNotFoundError(NotFoundError):
    code = ErrorCode.USER_NOT_FOUND
    number = 2006


class ThreadNotFoundError(NotFoundError):
    code = ErrorCode.THREAD_NOT_FOUND
    number = 3001

    def __init__(self, thread_id: str) -> None:
        super().__init__(f"thread {thread_id} not found")
        self.thread_id = thread_id


class MessageNotFoundError(NotFoundError):
    code = ErrorCode.MESSAGE_NOT_FOUND
    number = 4001


class UploadNotFoundError(NotFoundError):
    """No such upload, or one the caller may not read (the same answer: never reveal it)."""

    code = ErrorCode.UPLOAD_NOT_FOUND
    number = 4007


class RateLimitedError(MqimError):
    """Over a rate limit; `retry_after` is the whole seconds until the next attempt may pass."""

    code = ErrorCode.RATE_LIMITED
    number = 1006

    def __init__(self, msg: str, retry_after: int = 1) -> None:
        super().__init__(msg)
        self.retry_after = max(1, retry_after)


class PayloadTooLargeError(MqimError):
    """A request body or an uplink over its size cap (HTTP 413); refused while reading."""

    code = ErrorCode.PAYLOAD_TOO_LARGE
    number = 1012


class UploadTooLargeError(PayloadTooLargeError):
    """An upload over MQIM_MAX_UPLOAD_BYTES (HTTP 413), refused while streaming it in."""

    code = ErrorCode.UPLOAD_TOO_LARGE
    number = 4008


class InternalError(MqimError):
    """A fault of the server, not of the request (HTTP 500); the command had no effect."""

    code = ErrorCode.INTERNAL_ERROR
    number = 5000


class AuthError(MqimError):
    """Root of authentication failures (raised bare: 2001, like an invalid token)."""

    code = ErrorCode.TOKEN_INVALID
    number = 2001


class TokenInvalidError(AuthError):
    code = ErrorCode.TOKEN_INVALID
    number = 2001


class RefreshReuseError(TokenInvalidError):
    """A rotated refresh token came back: the session was ended as stolen."""

    def __init__(self, user_id: str, session_id: str) -> None:
        super().__init__("refresh token was already used; session ended")
        self.user_id = user_id
        self.session_id = session_id


class TokenExpiredError(AuthError):
    code = ErrorCode.TOKEN_EXPIRED
    number = 2002


class LoginFailedError(AuthError):
    code = ErrorCode.LOGIN_FAILED
    number = 2005


class AccountBannedError(AuthError):
    code = ErrorCode.ACCOUNT_BANNED
    number = 2009


class ConflictError(MqimError):
    """Root of "it already exists" failures (raised bare: 1010 already_exists)."""

    code = ErrorCode.ALREADY_EXISTS
    number = 1010


class UserExistsError(ConflictError):
    code = ErrorCode.USER_EXISTS
    number = 2007


class AlreadyMemberError(ConflictError):
    code = ErrorCode.ALREADY_MEMBER
    number = 3005


class AlreadyFriendsError(ConflictError):
    code = ErrorCode.ALREADY_FRIENDS
    number = 1007


class RequestExistsError(ConflictError):
    """A friend request from the same sender to the same user is still pending."""

    code = ErrorCode.REQUEST_EXISTS
    number = 1011


class AlreadyExistsError(ConflictError):
    """A named thing already exists: a friend group of that name, a friend already in a group."""

    code = ErrorCode.ALREADY_EXISTS
    number = 1010


class MailFailedError(MqimError):
    """The mail server refused or could not be reached; nothing was delivered (HTTP 502)."""

    code = ErrorCode.MAIL_FAILED
    number = 1008


class CodeInvalidError(MqimError):
    """A verification code that does not match, has expired, was used, or had too many tries."""

    code = ErrorCode.CODE_INVALID
    number = 2010


class ClientMsgIdConflictError(ConflictError):
    """The sender already used this client_msg_id in another thread: nothing is stored or
    published (a retry is only ever answered in its own thread)."""

    code = ErrorCode.CLIENT_MSG_ID_CONFLICT
    number = 4002


class RoomFullError(ConflictError):
    code = ErrorCode.ROOM_FULL
    number = 3011

    def __init__(self, thread_id: str, capacity: int) -> None:
        super().__init__(f"room {thread_id} is full ({capacity} members)")
        self.thread_id = thread_id


class InvitationDecidedError(ConflictError):
    code = ErrorCode.INVITATION_DECIDED
    number = 3012


def error_event(error: MqimError, req: str | None) -> ErrorEvent:
    """The `error` event that answers an uplink command (the one builder of it in Python; the
    Mosquitto plugin's C twin is held to the same shape by the contract tests)."""
    retry_after = error.retry_after if isinstance(error, RateLimitedError) else None
    return ErrorEvent(type="error", req=req, code=error.number, error=error.code.value,
                      msg=error.msg, retry_after=retry_after)

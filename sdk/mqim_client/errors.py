"""What the SDK raises. Server refusals carry the server's own `code`, `error` and `msg`
(docs/http-api.md, "Error codes"), whether they came over HTTP or as an MQTT `error` event."""

from __future__ import annotations


class MqimClientError(Exception):
    """Base of every error the SDK raises."""


class ServerError(MqimClientError):
    """The server refused something: `code` (e.g. 3003) and `error` (e.g. `not_a_member`) say
    what for programs, `msg` for people; `retry_after` (seconds) only on 1006 rate_limited."""

    def __init__(self, code: int, error: str, msg: str, retry_after: int | None = None) -> None:
        super().__init__(f"{error} ({code}): {msg}")
        self.code = code
        self.error = error
        self.msg = msg
        self.retry_after = retry_after


class ApiError(ServerError):
    """An HTTP request answered with an error envelope; `status` is the HTTP status."""

    def __init__(self, status: int, code: int, error: str, msg: str,
                 retry_after: int | None = None) -> None:
        super().__init__(code, error, msg, retry_after)
        self.status = status


class CommandError(ServerError):
    """An uplink command answered with an `error` event; `req` is the command's."""

    def __init__(self, req: str | None, code: int, error: str, msg: str,
                 retry_after: int | None = None) -> None:
        super().__init__(code, error, msg, retry_after)
        self.req = req


class SendTimeoutError(MqimClientError):
    """No ack or echo within the send's deadline, after every retry. The message may still be
    stored: sending again with the same `client_msg_id` never stores it twice."""

    def __init__(self, thread_id: str, client_msg_id: str, attempts: int) -> None:
        super().__init__(f"send {client_msg_id!r} to {thread_id} unconfirmed after "
                         f"{attempts} attempts")
        self.thread_id = thread_id
        self.client_msg_id = client_msg_id
        self.attempts = attempts


class SessionEndedError(MqimClientError):
    """The server ended this login session (`kicked`: replaced, signed out, banned, ...), or
    the refresh token was refused: log in again."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"the session ended: {reason}")
        self.reason = reason


class NotLoggedInError(MqimClientError):
    """A call that needs a session before register() or login()."""

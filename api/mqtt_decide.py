"""The one authorization decision behind the HTTP auth hooks of external brokers (cluster mode).

`decide(...)` answers "may this client connect, publish, subscribe or receive here?" with the same
rule the embedded broker's plugins apply: credentials through the `Directory` (user id + live
access JWT, the client id in the user's namespace) and topics through
`broker.acl.check_topic_access`. It knows no HTTP and no broker wire format; the adapters in
`api/routes/mqtt_hooks.py` turn each broker's request into one call and the `Decision` into that
broker's reply.

Service accounts (the bridge and the API's publisher) authenticate with the password derived from
the JWT secret, or with the one in `MQIM_BROKER_URL` when that URL names the account, and may use
every topic. Users never publish retained messages: retained messages are not used on
access-controlled topics (docs/design.md section 3), and the brokers would replay them without
asking.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from api.state import ApiState
from broker.acl import Access, check_topic_access
from broker.embedded.plugins import owns_client_id
from broker.link.client import derive_service_password, service_endpoint
from config import Settings
from contract.errors import AuthError
from models.tokens import decode_access_token

logger = logging.getLogger(__name__)


class HookAction(StrEnum):
    CONNECT = "connect"
    SUPERUSER = "superuser"
    PUBLISH = "publish"
    SUBSCRIBE = "subscribe"
    RECEIVE = "receive"
    # mosquitto-go-auth acc 3: receive and publish, both must be allowed.
    READWRITE = "readwrite"


_TOPIC_ACCESS: Mapping[HookAction, tuple[Access, ...]] = {
    HookAction.PUBLISH: (Access.PUBLISH,),
    HookAction.SUBSCRIBE: (Access.SUBSCRIBE,),
    HookAction.RECEIVE: (Access.RECEIVE,),
    HookAction.READWRITE: (Access.RECEIVE, Access.PUBLISH),
}


@dataclass(frozen=True)
class Decision:
    allowed: bool
    # Why not, for broker logs and error fields; never contains a secret.
    reason: str = ""
    # A service account: every topic, no expiry.
    superuser: bool = False
    # CONNECT of a user: when the access token used as password expires (unix seconds).
    expires_at: int | None = None


def _deny(reason: str) -> Decision:
    return Decision(False, reason)


def service_credentials(settings: Settings) -> dict[str, list[str]]:
    """Username -> accepted passwords of our own services' broker account(s).

    Always the bridge account with its derived password (what the embedded broker accepts), and
    the account of `MQIM_BROKER_URL` with its password, since that is what our services present
    to an external broker.
    """
    username = settings.bridge_username
    creds = {username: [derive_service_password(settings.jwt_secret, username)]}
    endpoint = service_endpoint(settings)
    if endpoint.username and endpoint.password:
        creds.setdefault(endpoint.username, []).append(endpoint.password)
    return {name: passwords for name, passwords in creds.items() if name}


def _password_matches(password: str, expected: list[str]) -> bool:
    # Compare digests so neither the length nor the content leaks through timing.
    given = hashlib.sha256(password.encode()).digest()
    results = [hmac.compare_digest(given, hashlib.sha256(e.encode()).digest()) for e in expected]
    return any(results)


async def decide(
    state: ApiState,
    action: HookAction,
    *,
    username: str | None,
    client_id: str | None = None,
    password: str | None = None,
    topic: str | None = None,
    retain: bool = False,
) -> Decision:
    """Whether `username` may do `action`.

    CONNECT needs `password` and `client_id`; PUBLISH, SUBSCRIBE, RECEIVE and READWRITE need
    `topic` (a subscription filter for SUBSCRIBE); SUPERUSER needs only the username. A missing
    or empty value is a denial, never an error. The broker authenticated the client before it
    asks about topics, so topic checks trust `username`.
    """
    if not username:
        return _deny("no username")
    services = service_credentials(state.ctx.settings)
    is_service = username in services
    if action == HookAction.CONNECT:
        return await _decide_connect(state, username, client_id, password, services)
    if action == HookAction.SUPERUSER:
        return Decision(is_service, "" if is_service else "not a service account", is_service)
    if not topic:
        return _deny("no topic")
    accesses = _TOPIC_ACCESS[action]
    if retain and not is_service and Access.PUBLISH in accesses:
        return _deny("retained messages are not used on mqim topics")
    for access in accesses:
        allowed = await check_topic_access(
            username=username, topic=topic, access=access, scheme=state.ctx.topics,
            directory=state.directory, service_users=services.keys(),
        )
        if not allowed:
            logger.debug("hook: refused %s of %r on %r", access, username, topic)
            return _deny(f"{username} may not {access} {topic}")
    return Decision(True, superuser=is_service)


async def _decide_connect(
    state: ApiState, username: str, client_id: str | None, password: str | None,
    services: Mapping[str, list[str]],
) -> Decision:
    if username in services:
        if password and _password_matches(password, services[username]):
            return Decision(True, superuser=True)
        logger.info("hook: refused service login of %r: wrong password", username)
        return _deny("wrong service password")
    if not owns_client_id(username, client_id or ""):
        # Otherwise a user could take over another user's (or the bridge's) connection.
        logger.info("hook: refused %r: client id %r is not theirs", username, client_id)
        return _deny(f"client id must be {username} or {username}:<anything>")
    if not password or not await state.directory.check_credentials(username, password):
        logger.info("hook: refused MQTT login of %r: invalid, expired or ended token", username)
        return _deny("password is not a live access token of this user")
    try:
        claims = decode_access_token(state.ctx.settings.jwt_secret, password)
    except AuthError:  # expired between the two reads
        return _deny("password is not a live access token of this user")
    return Decision(True, expires_at=claims.expires_at)

"""amqtt plugins of the embedded broker: authentication and the topic ACL, both deny by default.

They get their collaborators (the directory, the service credentials) through their `Config`
dataclass, which amqtt fills from the broker config by reference.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt
from amqtt.broker import BrokerContext
from amqtt.contexts import Action
from amqtt.mqtt.connack import CONNECTION_ACCEPTED, IDENTIFIER_REJECTED, NOT_AUTHORIZED
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session

from broker.acl import Access, Directory, check_topic_access
from broker.embedded import observe
from broker.link.publisher import encode_event
from contract.errors import ForbiddenError, error_event
from contract.topics import TopicScheme

_ACTIONS = {
    Action.PUBLISH: Access.PUBLISH,
    Action.SUBSCRIBE: Access.SUBSCRIBE,
    Action.RECEIVE: Access.RECEIVE,
}


class ConnectionRegistry:
    """Which user and login session each connected client id belongs to, so that ending a
    session or banning a user can close exactly those connections."""

    def __init__(self) -> None:
        # client id -> (user, login session, the amqtt Session of that connection)
        self._clients: dict[str, tuple[str, str | None, object]] = {}

    def add(self, client_id: str, username: str, session_id: str | None, owner: object) -> None:
        self._clients[client_id] = (username, session_id, owner)

    def rebind(self, client_id: str, owner: object) -> None:
        """The connection resumed a persistent session: amqtt serves it with that object."""
        if (entry := self._clients.get(client_id)) is not None:
            self._clients[client_id] = (entry[0], entry[1], owner)

    def discard(self, client_id: str, owner: object) -> None:
        """Forget a connection that ended, unless a newer one took its client id over (the
        old one's disconnect comes after the new one's CONNECT)."""
        entry = self._clients.get(client_id)
        if entry is not None and entry[2] is owner:
            del self._clients[client_id]

    def __len__(self) -> int:
        return len(self._clients)

    def user_of(self, client_id: str) -> str | None:
        entry = self._clients.get(client_id)
        return entry[0] if entry else None

    def of_session(self, session_id: str) -> list[str]:
        return [c for c, (_, sid, _) in self._clients.items() if sid == session_id]

    def of_user(self, username: str) -> list[str]:
        return [c for c, (user, _, _) in self._clients.items() if user == username]


@dataclass
class PluginConfig:
    directory: Any = None  # a broker.acl.Directory
    scheme: Any = field(default_factory=TopicScheme)
    # username -> password of service accounts (the bridge); they may use any topic.
    service_credentials: Mapping[str, str] = field(default_factory=dict)
    connections: Any = field(default_factory=ConnectionRegistry)


def owns_client_id(username: str, client_id: str) -> bool:
    """A user's client ids are `{user}` or `{user}:{anything}`; ':' never occurs in user ids."""
    return client_id == username or client_id.startswith(f"{username}:")


class MqimAuthPlugin(BaseAuthPlugin):
    """Username = user id, password = access JWT; service accounts by shared secret.

    A will message is checked against the publish ACL here, at CONNECT, because amqtt publishes
    wills without asking the topic plugins.
    """

    Config = PluginConfig  # type: ignore[assignment]  # amqtt types Config as its own stub

    async def authenticate(self, *, session: Session) -> bool | None:
        return await self.connect_code(session=session) == CONNECTION_ACCEPTED

    async def connect_code(self, *, session: Session) -> int:
        """The CONNACK return code for this CONNECT (MQTT 3.1.1 s.3.2.2.3): 0 accepts it (and
        registers the connection); 2 "identifier rejected" for a client id outside the user's
        namespace, so that a developer sees what to fix; 5 "not authorized" for anything else.

        MqimBroker asks this directly: amqtt's `authenticate` answers only yes or no, and amqtt
        refuses every "no" with 5. A refusal is logged once, with its reason.
        """
        code, reason = await self._decide(session)
        if code != CONNECTION_ACCEPTED:
            peer = f"{session.remote_address}:{session.remote_port}"
            observe.refused(session.username, session.client_id, peer, reason)
        return code

    async def _decide(self, session: Session) -> tuple[int, str]:
        config: PluginConfig = self.config
        username, password = session.username or "", session.password or ""
        if not username or not password:
            return NOT_AUTHORIZED, "no credentials"
        expected = config.service_credentials.get(username)
        if expected is not None:
            matches = hmac.compare_digest(expected.encode(), password.encode())
            return (CONNECTION_ACCEPTED, "") if matches else (NOT_AUTHORIZED, "bad credentials")
        if not owns_client_id(username, session.client_id or ""):
            # Otherwise a user could take over (disconnect) another user's or the bridge's
            # connection by reusing its client id.
            return IDENTIFIER_REJECTED, "client id is not theirs"
        directory: Directory = config.directory
        if not await directory.check_credentials(username, password):
            return NOT_AUTHORIZED, "bad credentials"
        if session.will_flag:
            allowed = await check_topic_access(
                username=username, topic=session.will_topic or "", access=Access.PUBLISH,
                scheme=config.scheme, directory=directory, service_users=(),
            )
            if not allowed or session.will_retain:
                return NOT_AUTHORIZED, "will not allowed"
        registry: ConnectionRegistry = config.connections
        registry.add(session.client_id or "", username, _session_of(password), session)
        return CONNECTION_ACCEPTED, ""

    async def on_broker_client_connected(self, *, client_id: str, client_session: Session,
                                         **_: object) -> None:
        peer = f"{client_session.remote_address}:{client_session.remote_port}"
        observe.connected(client_session.username, client_id, peer)

    async def on_broker_client_disconnected(self, *, client_id: str, client_session: Session,
                                            **_: object) -> None:
        registry: ConnectionRegistry = self.config.connections
        registry.discard(client_id, client_session)


def _session_of(token: str) -> str | None:
    """The `sid` claim of an access token that the directory has already verified."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        return None
    sid = claims.get("sid")
    return sid if isinstance(sid, str) else None


class MqimAclPlugin(BaseTopicPlugin):
    """Checks every subscribe, publish and delivery against `broker.acl.check_topic_access`.

    A refused publish is reported to the sender as an `error` event on its personal topic, since
    MQTT 3.1.1 acknowledges it anyway and would otherwise drop it silently.
    """

    Config = PluginConfig  # type: ignore[assignment]  # amqtt types Config as its own stub

    async def topic_filtering(
        self, *, session: Session | None = None, topic: str | None = None,
        action: Action | None = None,
    ) -> bool:
        config: PluginConfig = self.config
        if session is None or topic is None or action is None or not session.username:
            return False
        allowed = await check_topic_access(
            username=session.username, topic=topic, access=_ACTIONS[action],
            scheme=config.scheme, directory=config.directory,
            service_users=config.service_credentials.keys(),
        )
        if not allowed and action == Action.PUBLISH:
            await self._report_denied_publish(session.username, topic, config.scheme)
        elif not allowed and action == Action.SUBSCRIBE:
            observe.denied(session.username, "subscribe", topic)
        return allowed

    async def _report_denied_publish(self, username: str, topic: str, scheme: TopicScheme) -> None:
        observe.denied(username, "publish", topic)
        event = error_event(ForbiddenError(
            f"you may not publish on {topic}; publish commands on {scheme.uplink(username)}"),
            None)
        context: BrokerContext = self.context  # type: ignore[assignment]  # broker-side plugin
        await context.broadcast_message(scheme.user(username), encode_event(event), qos=1)

"""The embedded amqtt broker: `async with embedded_broker(settings, directory):`.

amqtt 0.12.1 has measured gaps (docs/guarantees.md lists them with what mqim does about each);
this module closes those that code can close:
- a CONNECT with bad credentials still deletes or takes over the session of its client id ->
  credentials are checked first;
- retained messages are delivered without ACL checks -> the broker stores none at all;
- a PUBLISH to a `$` topic stops the client's loop but leaves its socket open (a zombie) -> we
  close the connection, as MQTT-4.7.2-1 allows;
- the will skips the publish ACL -> checked at CONNECT by MqimAuthPlugin;
- a denied QoS 1 publish is acked and dropped -> MqimAclPlugin sends an `error` event;
- a socket that never sends CONNECT is held forever -> closed after CONNECT_TIMEOUT_SECONDS;
- a socket that fails before or at CONNECT keeps its file descriptor until the garbage
  collector runs -> every such path closes it;
- packets are parsed straight off the socket, at any size, and a bad one desynchronises the
  parser -> framed, bounded and checked first (broker/embedded/wire.py);
- an MQTT 5 CONNECT gets a 3.1.1 CONNACK, which MQTT 5 clients cannot read -> an MQTT 5 one;
- a client id outside the user's namespace gets "not authorized" -> "identifier rejected".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from typing import Any, cast

from amqtt.adapters import ReaderAdapter, StreamReaderAdapter, WriterAdapter
from amqtt.broker import Broker
from amqtt.contexts import Action, ListenerConfig
from amqtt.errors import AMQTTError, MQTTError, NoDataError
from amqtt.mqtt.connack import CONNECTION_ACCEPTED, ConnackPacket
from amqtt.mqtt.constants import QOS_1, QOS_2
from amqtt.mqtt.packet import CONNECT
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.session import Session
from amqtt.utils import format_client_message, gen_client_id

from broker.embedded.closing import BoundedStreamWriter, close_writer
from broker.embedded.framing import ProtocolViolationError
from broker.embedded.plugins import ConnectionRegistry, MqimAclPlugin, MqimAuthPlugin
from broker.embedded.subscriptions import SubscriptionTable
from broker.embedded.wire import (
    MQTT5_CONNACK_UNSUPPORTED,
    MQTT31_CONNACK_UNSUPPORTED,
    MqimProtocolHandler,
    PacketBody,
    connect_protocol,
    read_packet,
)
from broker.link.uplinks import UplinkQueue
from contract.topics import TopicScheme

logger = logging.getLogger(__name__)

# How long a kick waits for the events queued before it (a `kicked` event) to go out.
KICK_FLUSH_SECONDS = 1.0
# Most queued broadcasts one `_run_broadcast` call delivers before amqtt's loop looks again.
BROADCAST_DRAIN = 256
SESSION_EXPIRY_SECONDS = 24 * 3600  # disconnected persistent sessions (and queues) then go
# A connection that has not sent its whole CONNECT within this is closed (amqtt waits forever).
# MqimBroker(connect_timeout=...) overrides it, for tests.
CONNECT_TIMEOUT_SECONDS = 10.0


class MqimBroker(Broker):
    """amqtt's Broker with the fixes that need its internals (pinned amqtt==0.12.1)."""

    def __init__(
        self, config: dict[str, Any], connections: ConnectionRegistry, scheme: TopicScheme,
        *, connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
    ) -> None:
        super().__init__(config)
        self._connect_timeout = connect_timeout
        self._connections = connections
        self._uplink_head = scheme.uplink("")  # "im/up/"
        self._uplinks: UplinkQueue | None = None
        self._acl: MqimAclPlugin | None = None
        self._auth: MqimAuthPlugin | None = None
        self._subscriptions = SubscriptionTable()
        # Sessions authenticated early, so amqtt's own check is not repeated. Keyed by id() but
        # holding the object, so an id can never be reused by another session meanwhile.
        self._authenticated_early: dict[int, Session] = {}

    async def stream_connected(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, listener_name: str
    ) -> None:
        # amqtt's, with a writer whose close() cannot hang on a peer that reads nothing.
        await self._client_connected(
            listener_name, StreamReaderAdapter(reader), BoundedStreamWriter(writer))

    async def _initialize_client_session(
        self, reader: ReaderAdapter, writer: WriterAdapter, remote_address: str, remote_port: int
    ) -> tuple[BrokerProtocolHandler, Session]:
        """amqtt's version, hardened (see _accept_connect), and closing the socket on every
        failure: amqtt's `_client_connected` just returns after an AMQTTError here, leaving the
        socket open until the garbage collector finds it (a client that connects and closes
        before CONNECT cost a file descriptor each), and lets any other error escape."""
        peer = format_client_message(address=remote_address, port=remote_port)
        try:
            return await self._accept_connect(reader, writer, peer)
        except BaseException as exc:
            await close_writer(writer)
            if isinstance(exc, AMQTTError | MQTTError | NoDataError) or not isinstance(
                    exc, Exception):
                raise
            logger.warning("%s: error at CONNECT", peer, exc_info=True)
            raise AMQTTError(f"{peer}: {exc!r}") from exc

    async def _accept_connect(
        self, reader: ReaderAdapter, writer: WriterAdapter, peer: str
    ) -> tuple[BrokerProtocolHandler, Session]:
        """Read the CONNECT (whole, bounded in size and time), answer MQTT 5 in MQTT 5, and
        authenticate *before* touching existing sessions.

        amqtt waits for a CONNECT forever, reads it straight off the socket at any size, and
        deletes (clean session) or rewrites (persistent session) the session of the CONNECT's
        client id, taking over its live connection, before it checks the credentials: any
        client that knew a client id could disconnect that client, the bridge included.
        """
        try:
            async with asyncio.timeout(self._connect_timeout):
                framed = await read_packet(reader)
                if framed is None:
                    raise AMQTTError(f"{peer}: closed before CONNECT")
                fixed, body = framed
                if fixed.packet_type != CONNECT or fixed.flags:
                    raise ProtocolViolationError(f"{peer}: first packet is not a CONNECT")
                protocol = connect_protocol(body)
                if protocol == (b"MQTT", 5):
                    writer.write(MQTT5_CONNACK_UNSUPPORTED)
                    raise ProtocolViolationError(f"{peer}: MQTT 5 is not supported, only 3.1.1")
                if protocol == (b"MQIsdp", 3):
                    writer.write(MQTT31_CONNACK_UNSUPPORTED)
                    raise ProtocolViolationError(f"{peer}: MQTT 3.1 is not supported, only 3.1.1")
                source = PacketBody(fixed.to_bytes() + body)
                handler, incoming = await MqimProtocolHandler.init_from_connect(
                    source, writer, self.plugins_manager)
                if isinstance(handler, MqimProtocolHandler):
                    handler.uplinks = self
                if source.remaining:
                    raise ProtocolViolationError(f"{peer}: CONNECT longer than its fields")
        except TimeoutError:
            seconds = self._connect_timeout
            raise ProtocolViolationError(f"{peer}: no CONNECT within {seconds} s") from None
        except MQTTError as exc:  # amqtt's checks of the CONNECT (it answered, if it could)
            raise MQTTError(f"{peer}: invalid CONNECT: {exc}") from exc
        code = await self._connect_code(incoming)
        if code != CONNECTION_ACCEPTED:
            writer.write(ConnackPacket.build(0, code).to_bytes())
            raise AMQTTError(f"{peer}: refused, CONNACK return code {code}")
        self._authenticated_early[id(incoming)] = incoming
        try:
            return await self._adopt_session(handler, incoming)
        except BaseException:
            self._authenticated_early.pop(id(incoming), None)
            raise

    async def _connect_code(self, session: Session) -> int:
        # amqtt's auth plugins answer yes or no (sent as "not authorized"); ours tells a client
        # id outside the user's namespace ("identifier rejected") from bad credentials.
        if self._auth is None:
            self._auth = next(p for p in self.plugins_manager.plugins
                              if isinstance(p, MqimAuthPlugin))
        return await self._auth.connect_code(session=session)

    async def _adopt_session(
        self, handler: BrokerProtocolHandler, incoming: Session
    ) -> tuple[BrokerProtocolHandler, Session]:
        """The rest of amqtt 0.12.1's _initialize_client_session, unchanged in effect."""
        session = incoming
        if incoming.clean_session:
            if incoming.client_id:
                await self._close_taken_over(incoming.client_id)
                await self._delete_session(incoming.client_id)
            else:
                incoming.client_id = gen_client_id()
            incoming.parent = 0
        elif incoming.client_id in self._sessions:
            # The same client back on a persistent session: keep its queue, take the new
            # connection's will, keep-alive and credentials.
            session, _ = self._sessions[incoming.client_id]
            for name in ("will_flag", "will_message", "will_topic", "will_qos", "will_retain",
                         "keep_alive", "username", "password"):
                setattr(session, name, getattr(incoming, name))
            session.parent = 1
            self._authenticated_early.pop(id(incoming), None)
            self._authenticated_early[id(session)] = session
            self._connections.rebind(incoming.client_id, session)
        else:
            incoming.parent = 0
        delay = self.config.get("timeout-disconnect-delay", 0)
        if session.keep_alive > 0 and isinstance(delay, int):
            session.keep_alive += delay
        return handler, session

    async def _close_taken_over(self, client_id: str) -> None:
        """MQTT-3.1.4-2: a CONNECT with the client id of a connected client disconnects that
        client. amqtt 0.12.1 does so only for a persistent session; on a clean one it deletes
        the old session's subscriptions and leaves its connection open, still PUBACKed and
        PINGed but deaf, so that client never learns that it should reconnect."""
        _, handler = self._sessions.get(client_id, (None, None))
        if handler is not None and handler.writer is not None:
            await handler.writer.close()

    def uplink_queue(self) -> UplinkQueue:
        """From now on, uplinks the broker accepts go to this queue for the in-process bridge
        instead of being broadcast (see broker/link/uplinks.py)."""
        if self._uplinks is None:
            self._uplinks = UplinkQueue()
        return self._uplinks

    async def room(self, topic: str, limit: int, before_waiting: Callable[[], None]) -> None:
        if self._uplinks is not None:
            await self._uplinks.room(topic, limit, before_waiting)

    async def route(self, session: Session, topic: str, payload: bytes) -> bool:
        """A client's PUBLISH straight from its connection (MqimProtocolHandler._uplink_now):
        on an uplink topic, with the in-process bridge running, it is checked against the ACL
        (a refusal is reported, as on amqtt's path) and queued for the bridge; True when taken.
        amqtt's path (its session message loop, then _broadcast_message) takes the rest."""
        if self._uplinks is None or not topic.startswith(self._uplink_head):
            return False
        if await self._topic_filtering(session, topic=topic, action=Action.PUBLISH):
            self._uplinks.put(topic, payload)
        return True

    async def _broadcast_message(
        self,
        session: Session | None,
        topic: str | None,
        data: bytes | bytearray | None,
        force_qos: int | None = None,
    ) -> None:
        # With the sender's session for its PUBLISHes (after the ACL allowed them) and its will
        # (checked at CONNECT); with None for the events mqim publishes in-process.
        if (self._uplinks is not None and session is not None and topic is not None
                and topic.startswith(self._uplink_head)):
            self._uplinks.put(topic, bytes(data or b""))
            return
        await super()._broadcast_message(session, topic, data, force_qos)

    async def _run_broadcast(self, running_tasks: deque[asyncio.Task[Any]]) -> None:
        """amqtt 0.12.1's `_run_broadcast`, with three changes: the topic is looked up in the
        indexed table (broker/embedded/subscriptions.py) instead of tested against every filter;
        one call delivers whatever is queued (up to BROADCAST_DRAIN), where amqtt's loop spends
        a task and an `asyncio.wait` on every single message; and what the call delivers
        directly goes out in one socket write per connection."""
        broadcast = await self._broadcast_queue.get()
        corked: set[MqimProtocolHandler] = set()
        try:
            for _ in range(BROADCAST_DRAIN):
                await self._deliver(broadcast, running_tasks, corked)
                if self._broadcast_queue.empty():
                    return
                broadcast = self._broadcast_queue.get_nowait()
            await self._deliver(broadcast, running_tasks, corked)
        finally:
            for handler in corked:
                handler.flush()

    async def _deliver(self, broadcast: dict[str, Any], running_tasks: deque[asyncio.Task[Any]],
                       corked: set[MqimProtocolHandler]) -> None:
        """Deliver one broadcast; direct deliveries are queued on their connections, which
        are added to `corked` for the caller to flush."""
        topic = broadcast["topic"]
        table = cast(SubscriptionTable, self._subscriptions)
        for k_filter in table.candidates(topic):
            subscriptions = table.get(k_filter)
            if not subscriptions or not self._matches(topic, k_filter):
                continue
            for target_session, sub_qos in list(subscriptions):
                qos = broadcast.get("qos", sub_qos)
                if not await self._topic_filtering(target_session, topic=topic,
                                                   action=Action.RECEIVE):
                    continue
                state = target_session.transitions.state
                # Queued for a disconnected persistent session at QoS 1/2 [MQTT 3.1.2.4].
                if (state != "connected" and not target_session.clean_session
                        and qos in (QOS_1, QOS_2) and not target_session.is_anonymous):
                    await self._retain_broadcast_message(broadcast, qos, target_session)
                    continue
                if state != "connected":
                    continue
                handler = self._get_handler(target_session)
                if handler:
                    direct = handler if isinstance(handler, MqimProtocolHandler) else None
                    if direct is not None and direct.deliver_now(topic, broadcast["data"], qos):
                        corked.add(direct)
                        continue
                    delivery = self._loop.create_task(
                        handler.mqtt_publish(topic, broadcast["data"], qos, retain=False))
                    if direct is not None:
                        direct.delivering_slowly(delivery)
                    running_tasks.append(delivery)

    async def _topic_filtering(self, session: Session, topic: str, action: Action) -> bool:
        # amqtt asks every topic plugin through its manager, with a task and a wait_for per
        # check, and it checks every delivery; mqim has one topic plugin: ask it directly.
        if self._acl is None:
            self._acl = next(p for p in self.plugins_manager.plugins
                             if isinstance(p, MqimAclPlugin))
        return await self._acl.topic_filtering(session=session, topic=topic, action=action)

    async def kick_session(self, session_id: str) -> int:
        """Close the connections of one login session (it ended); returns how many."""
        return await self._close_clients(self._connections.of_session(session_id))

    async def kick_user(self, username: str) -> int:
        """Close every connection of a user (banned, deleted)."""
        return await self._close_clients(self._connections.of_user(username))

    async def _close_clients(self, client_ids: list[str]) -> int:
        if client_ids:
            await self._let_queued_deliveries_out()
        closed = 0
        for client_id in client_ids:
            session, handler = self._sessions.get(client_id, (None, None))
            if session is None or handler is None or handler.writer is None:
                continue
            # Closing the socket lets amqtt's own loop see the end, as if the client dropped
            # (its will is sent: a kicked device goes offline).
            await handler.writer.close()
            closed += 1
        if closed:
            logger.info("closed %d connection(s): %s", closed, ", ".join(client_ids))
        return closed

    async def _let_queued_deliveries_out(self) -> None:
        """Events published just before a kick (the `kicked` event itself) are still in amqtt's
        broadcast queue or its delivery tasks: give them a bounded moment to reach the socket.
        Closing the writer then flushes what was written."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(KICK_FLUSH_SECONDS):
                while not self._broadcast_queue.empty():  # noqa: ASYNC110  # amqtt offers no event
                    await asyncio.sleep(0.005)
                for _ in range(3):  # the delivery tasks it spawned write on their next turns
                    await asyncio.sleep(0)

    async def _authenticate(self, session: Session, listener: ListenerConfig) -> bool:
        if self._authenticated_early.pop(id(session), None) is session:
            return True
        return await super()._authenticate(session, listener)

    async def retain_message(
        self,
        source_session: Session | None,
        topic_name: str | None,
        data: bytes | bytearray | None,
        qos: int | None = None,
    ) -> None:
        # amqtt sends retained messages to new clients without asking the ACL, so mqim keeps
        # none: the live message is still delivered, only its retained copy is dropped.
        if data:
            who = source_session.username if source_session else "broker"
            logger.info("dropped retained copy of a message from %s on %s", who, topic_name)

    async def _handle_disconnect(
        self, client_session: Session, handler: BrokerProtocolHandler,
        disconnect_waiter: asyncio.Future[Any],
    ) -> None:
        # A persistent session's new connection may take over before the old one's end is
        # handled (a client that reconnects at once after a drop): amqtt would then mark the
        # session disconnected, and unregister it, under its new, live connection, which got
        # no more deliveries (they queued as for an offline client) and could not be kicked.
        # The old connection's handler only stops.
        _, current = self._sessions.get(client_session.client_id or "", (None, None))
        if current is not None and current is not handler:
            logger.debug("%s: the connection taken over has ended", client_session.client_id)
            await self._stop_handler(handler)
            return
        await super()._handle_disconnect(client_session, handler, disconnect_waiter)

    async def _handle_message_delivery(
        self, client_session: Session, handler: Any, wait_deliver: asyncio.Future[Any]
    ) -> bool:
        keep = await super()._handle_message_delivery(client_session, handler, wait_deliver)
        if not keep:
            # amqtt stops serving this client (e.g. PUBLISH to a '$' topic) but leaves the
            # socket open; end it as an abnormal disconnect so the client sees it and the
            # session is cleaned up.
            logger.info("closing %s after a protocol violation", client_session.client_id)
            ended: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            ended.set_result(None)
            await self._handle_disconnect(client_session, handler, ended)
        return bool(keep)

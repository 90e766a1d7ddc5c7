"""The SDK's MQTT side: one connection at a time, kept up with backoff, and what each new
connection must do so that nothing is lost (docs/guarantees.md, "What a client must do"):

- CONNECT with a live access token (refreshed first when it is about to expire);
- subscribe to the user's topic and every current thread (GET /api/threads, page by page),
  then catch up, by history, every thread the server is ahead on (GET /api/sync);
- follow `thread_added` / `thread_removed`; catch up a thread when a live seq skips ahead.

HTTP work runs in tasks, so that reading MQTT (and with it the acks sends wait for) never waits
for HTTP. Timeline entries go through `Timeline`, which delivers each once and in order.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import ssl
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiomqtt
import httpx
from pydantic import ValidationError

from mqim_client.api import Api
from mqim_client.errors import ApiError, MqimClientError, SessionEndedError
from mqim_client.events import (
    DOWNLINK_EVENTS,
    TIMELINE_ENTRIES,
    AckEvent,
    DownlinkEvent,
    ErrorEvent,
    KickedEvent,
    MessageEvent,
    ThreadAddedEvent,
    ThreadRemovedEvent,
)
from mqim_client.outbox import Outbox
from mqim_client.timeline import Entry, Timeline, initial_positions

log = logging.getLogger("mqim_client")
# paho's own lines ("failed to receive on socket" when the broker goes away) go here, below
# the package's NullHandler: quiet unless the app configures logging.
MQTT_LOG = logging.getLogger("mqim_client.mqtt")
PAGE = 200  # the largest page GET /api/threads and GET …/messages serve
BACKOFF_MIN, BACKOFF_MAX = 0.2, 5.0  # reconnect delays, doubling while the broker is away
RETRYABLE = (aiomqtt.MqttError, httpx.TransportError, OSError)
EventQueue = asyncio.Queue[DownlinkEvent | BaseException | None]
# paho leaves Nagle on: each small PUBLISH then waits ~40 ms for the delayed ACK of the last.
NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


@dataclass
class Stats:
    """Counters, for tests and for the curious."""

    connects: int = 0
    sends: int = 0
    retries: int = 0  # send attempts after the first
    confirmed_by_echo: int = 0  # sends whose ack never came, confirmed by their echo
    caught_up: int = 0  # entries fetched over HTTP after a reconnect or a gap


@dataclass(frozen=True)
class Broker:
    host: str
    port: int
    transport: str  # "tcp" or "websockets"
    path: str | None
    tls: bool

    @classmethod
    def parse(cls, url: str) -> Broker:
        """mqtt://host:1883, mqtts://, ws://host:8083/path or wss://."""
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts", "ws", "wss") or not parts.hostname:
            raise ValueError(f"broker URL {url!r}: expected mqtt://, mqtts://, ws:// or wss://")
        web = parts.scheme in ("ws", "wss")
        default = {"mqtt": 1883, "mqtts": 8883, "ws": 8083, "wss": 443}[parts.scheme]
        return cls(parts.hostname, parts.port or default, "websockets" if web else "tcp",
                   (parts.path or "/") if web else None, parts.scheme in ("mqtts", "wss"))


def presence_command(status: str) -> bytes:
    return json.dumps({"op": "presence", "status": status}).encode()


class Link:
    def __init__(self, api: Api, broker: Broker, events: EventQueue, outbox: Outbox,
                 stats: Stats, *, keepalive: int, presence: bool,
                 positions: Mapping[str, int] | None) -> None:
        self.api, self.broker, self.events, self.outbox = api, broker, events, outbox
        self.stats, self.keepalive, self.presence = stats, keepalive, presence
        self.timeline = Timeline(events.put_nowait)
        self.mqtt: aiomqtt.Client | None = None
        self.connected = asyncio.Event()  # set while connected, and once the link failed
        self.lost = asyncio.Event()  # set when the current connection drops
        self.failure: MqimClientError | None = None
        self._start = positions
        self._followed = False  # whether a connection has listed the threads yet
        self._runner: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._catch_ups: dict[str, asyncio.Task[None]] = {}
        session = api.session
        assert session is not None  # noqa: S101  # the client checks before connecting
        self.prefix, self.user_id = session.mqtt.topic_prefix, session.user_id
        self.uplink = f"{self.prefix}/up/{self.user_id}"

    def start(self) -> None:
        self._runner = asyncio.create_task(self._run(), name="mqim-client-link")

    async def wait_connected(self, timeout: float) -> aiomqtt.Client:  # noqa: ASYNC109
        """The live connection; TimeoutError if none within `timeout`; the failure if the
        session is over."""
        await asyncio.wait_for(self.connected.wait(), timeout)
        if self.failure is not None:
            raise self.failure
        assert self.mqtt is not None  # noqa: S101  # set before `connected`
        return self.mqtt

    async def stop(self) -> None:
        if self.mqtt is not None and self.presence and self.failure is None:
            try:  # a clean DISCONNECT discards the will: say offline first
                await self.mqtt.publish(self.uplink, presence_command("offline"), qos=1,
                                        timeout=5)
            except aiomqtt.MqttError as exc:
                log.info("could not say offline: %s", exc)
        if self.failure is None:  # sends still waiting end now, not at their deadline
            self.failure = MqimClientError("the client was closed")
            self.connected.set()
            self.outbox.fail_all(self.failure)
        for task in [self._runner, *self._tasks]:
            if task is not None:
                task.cancel()
        await asyncio.gather(*[t for t in (self._runner, *self._tasks) if t],
                             return_exceptions=True)

    def fail(self, exc: MqimClientError) -> None:
        """The session is over: wake every waiter with the reason; no more reconnects."""
        if self.failure is not None:
            return
        self.failure = exc
        self.connected.set()
        self.outbox.fail_all(exc)
        self.events.put_nowait(exc)
        if self._runner is not None and asyncio.current_task() is not self._runner:
            self._runner.cancel()

    async def _run(self) -> None:
        delay = BACKOFF_MIN
        while self.failure is None:
            up = False
            try:
                up = await self._connection()
            except SessionEndedError as exc:
                self.fail(exc)
            except ApiError as exc:
                if exc.status < 500:
                    self.fail(exc)
                else:
                    log.warning("mqim API unavailable: %s", exc)
            except RETRYABLE as exc:
                log.info("MQTT connection lost: %s", exc)
            finally:
                if self.failure is None:
                    self.connected.clear()
                self.lost.set()
                self.mqtt = None
            delay = BACKOFF_MIN if up else min(delay * 2, BACKOFF_MAX)
            if self.failure is None:
                await asyncio.sleep(delay)

    async def _connection(self) -> bool:
        """One MQTT connection, from CONNECT until it drops (always by an exception)."""
        session = await self.api.fresh_session()  # a reconnect needs a live access token
        creds, broker = session.mqtt, self.broker
        # After the first connection a fresh client id (still `{user}:…`, so the broker admits
        # it): a clustered broker may hold the old one while the node it lived on is down
        # (RabbitMQ 3.10 then never answers the SUBSCRIBE). Nothing is lost: the session is
        # clean either way, and what was missed is caught up over HTTP.
        connects = self.stats.connects
        identifier = f"{creds.client_id}-r{connects}" if connects else creds.client_id
        async with aiomqtt.Client(
            broker.host, broker.port, username=creds.username, password=creds.password,
            identifier=identifier, transport=broker.transport,  # type: ignore[arg-type]
            websocket_path=broker.path, keepalive=self.keepalive, clean_session=True,
            will=aiomqtt.Will(self.uplink, presence_command("offline"), qos=1)
            if self.presence else None, timeout=10,
            tls_context=ssl.create_default_context() if broker.tls else None,
            socket_options=NODELAY, logger=MQTT_LOG,
        ) as mqtt:
            self.stats.connects += 1
            await mqtt.subscribe(f"{self.prefix}/u/{self.user_id}", qos=1)
            await self._follow_all(mqtt)
            self.mqtt, self.lost = mqtt, asyncio.Event()
            # Before connect() returns: what the server committed before the subscriptions is
            # known now, and only what the caller does afterwards arrives live.
            await self._guarded(self._catch_up_behind())
            self.connected.set()
            if self.presence:
                await mqtt.publish(self.uplink, presence_command("online"), qos=1)
            async for message in mqtt.messages:
                self._on_message(message.payload)
                if self.failure is not None:  # kicked: stop here, whether or not the broker
                    return True               # closes the connection
        raise aiomqtt.MqttError("the message stream ended")

    def _thread_topic(self, thread_id: str) -> str:
        return f"{self.prefix}/t/{thread_id}"

    async def _listed_threads(self) -> dict[str, int]:
        """Every current thread of the user and its max_seq: GET /api/threads page by page,
        archived ones included, then the message requests (listed apart)."""
        found: dict[str, int] = {}
        for scope in ({"archived": "true"}, {"requests": "true"}):
            after: dict[str, str] = {}
            while True:
                page = await self.api.request("GET", "/api/threads",
                                              params={"limit": PAGE, **scope, **after})
                found.update({item["thread_id"]: int(item["max_seq"]) for item in page})
                if len(page) < PAGE:
                    break
                after = {"after": page[-1]["thread_id"]}
        return found

    async def _follow_all(self, mqtt: aiomqtt.Client) -> None:
        """Subscribe to every thread; follow new ones from their position; drop those we are no
        longer in (removed while away)."""
        listed = await self._listed_threads()
        for thread_id in self.timeline.tracked() - set(listed):
            self.timeline.forget(thread_id)
        starts = initial_positions(listed, self._start, first=not self._followed)
        for thread_id, seq in starts.items():
            self.timeline.track(thread_id, seq)
        self._followed = True
        topics = [(self._thread_topic(thread_id), 1) for thread_id in sorted(listed)]
        for start in range(0, len(topics), 100):
            await mqtt.subscribe(topics[start:start + 100])

    async def _catch_up_behind(self) -> None:
        """After (re)subscribing: catch up each thread whose max_seq is past our position."""
        for counts in await self.api.request("GET", "/api/sync"):
            position = self.timeline.position(counts["thread_id"])
            if position is not None and counts["max_seq"] > position:
                self._start_catch_up(counts["thread_id"])

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        _ = self._task(work)  # kept in self._tasks until done

    def _task(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(self._guarded(work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _guarded(self, work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except SessionEndedError as exc:
            self.fail(exc)
        except (*RETRYABLE, ApiError) as exc:  # the next reconnect's catch-up covers it
            log.warning("mqim_client background work failed: %r", exc)

    def _start_catch_up(self, thread_id: str) -> None:
        running = self._catch_ups.get(thread_id)
        if running is None or running.done():
            self._catch_ups[thread_id] = self._task(self._catch_up(thread_id))

    async def _catch_up(self, thread_id: str) -> None:
        """History after our position until the server has no more and nothing is held (a held
        entry's predecessor may have been committed after our last page was read)."""
        rounds = 0
        while (position := self.timeline.position(thread_id)) is not None:
            page = await self.api.request("GET", f"/api/threads/{thread_id}/messages",
                                          params={"after_seq": position, "limit": PAGE})
            if page:
                self.stats.caught_up += len(page)
                self.timeline.fill(thread_id, [TIMELINE_ENTRIES.validate_python(item)
                                               for item in page])
            elif not self.timeline.holding(thread_id):
                return
            elif (rounds := rounds + 1) >= 5:
                self.timeline.flush(thread_id)
                return
            else:
                await asyncio.sleep(0.1)  # polling: that predecessor is in flight

    async def _add_thread(self, thread_id: str) -> None:
        """Added to a thread: follow it from its start (what we may read of it)."""
        if not self.timeline.track(thread_id, 0):
            return  # followed already (listed after a reconnect)
        if self.mqtt is not None:
            await self.mqtt.subscribe(self._thread_topic(thread_id), qos=1)
        self._start_catch_up(thread_id)

    async def _remove_thread(self, thread_id: str) -> None:
        self.timeline.forget(thread_id)
        if self.mqtt is not None:
            await self.mqtt.unsubscribe(self._thread_topic(thread_id))

    def _on_message(self, payload: Any) -> None:
        try:
            event = DOWNLINK_EVENTS.validate_json(payload)
        except ValidationError:
            log.warning("ignoring an event this SDK does not know: %.200r", payload)
            return
        if isinstance(event, Entry):
            if isinstance(event, MessageEvent):
                self.outbox.on_echo(event)
            if self.timeline.offer(event):
                self._start_catch_up(event.thread_id)
            return  # the timeline delivers it
        if isinstance(event, AckEvent):
            self.outbox.on_ack(event)
        elif isinstance(event, ErrorEvent):
            self.outbox.on_error(event)
        elif isinstance(event, ThreadAddedEvent):
            self._spawn(self._add_thread(event.thread_id))
        elif isinstance(event, ThreadRemovedEvent):
            self._spawn(self._remove_thread(event.thread_id))
        self.events.put_nowait(event)
        session = self.api.session
        if isinstance(event, KickedEvent) and session and event.session_id == session.session_id:
            self.fail(SessionEndedError(f"kicked: {event.reason}"))

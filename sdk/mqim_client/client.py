"""`Client`: one user's session with an mqim server, over HTTP and MQTT.

What every chat app would otherwise re-implement (docs/guarantees.md, "What a client must do"):
login and a fresh access token (`api.py`); a connection that comes back, subscribed to every
thread, and catches up what it missed (`link.py`); each thread's entries once and in seq order
(`timeline.py`); `send()` with a `client_msg_id`, confirmed by its ack or echo and retried with
the same id until then (`outbox.py`, and below).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import aiomqtt
import httpx

from mqim_client.api import Api, Session
from mqim_client.errors import CommandError, MqimClientError, NotLoggedInError, SendTimeoutError
from mqim_client.events import (
    TIMELINE_ENTRIES,
    ActionResult,
    DownlinkEvent,
    SendResult,
    TimelineEntry,
)
from mqim_client.link import PAGE, Broker, EventQueue, Link, Stats
from mqim_client.outbox import Outbox, Pending

RATE_LIMITED = 1006


class Client:
    def __init__(self, base_url: str, *, broker: str | None = None,
                 http: httpx.AsyncClient | None = None, send_timeout: float = 5.0,
                 send_deadline: float = 120.0, refresh_margin: float = 60.0,
                 keepalive: int = 30, presence: bool = True) -> None:
        """`base_url`: the HTTP API, e.g. http://127.0.0.1:8000. `broker`: where MQTT listens
        (the token bundle does not say), by default mqtt:// on port 1883 of the API's host.
        `send_timeout`: how long one attempt waits for its ack before sending again;
        `send_deadline`: when `send()` gives up. `presence`: say online on connect and offline
        on close, with the offline will set."""
        self.api = Api(base_url, http=http, refresh_margin=refresh_margin)
        self.broker = Broker.parse(broker or f"mqtt://{urlsplit(base_url).hostname}:1883")
        self.send_timeout, self.send_deadline = send_timeout, send_deadline
        self.keepalive, self.presence = keepalive, presence
        self.stats = Stats()
        self._events: EventQueue = asyncio.Queue()
        self._link: Link | None = None
        self._outbox: Outbox | None = None
        self._closed = False

    # -- account and HTTP ------------------------------------------------------------------

    @property
    def session(self) -> Session:
        if self.api.session is None:
            raise NotLoggedInError("register() or login() first")
        return self.api.session

    @property
    def user_id(self) -> str:
        return self.session.user_id

    async def register(self, name: str, password: str, *, platform: str = "device",
                       **extra: Any) -> Session:
        """A new account, signed in; `extra`: user_id, email, phone, code."""
        return await self.api.register(
            {"name": name, "password": password, "platform": platform, **extra})

    async def login(self, login: str, password: str, *, platform: str = "device",
                    code: str | None = None) -> Session:
        """Sign in with a user id, email or phone. A login ends the user's older session on
        the same `platform`: give each device that runs at the same time its own."""
        body = {"login": login, "password": password, "platform": platform}
        return await self.api.login(body if code is None else {**body, "code": code})

    async def refresh(self) -> Session:
        """A new access token now (the SDK also does this by itself when needed)."""
        return await self.api.refresh()

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Any authenticated route of docs/http-api.md; returns the envelope's `data`, raises
        ApiError with the server's code."""
        return await self.api.request(method, path, **kwargs)

    async def create_thread(self, kind: str, user_ids: list[str], **fields: Any) -> str:
        """A new `group` (or `direct`, `room`) thread; returns its id."""
        data = await self.request("POST", "/api/threads",
                                  json={"type": kind, "user_ids": user_ids, **fields})
        return str(data["thread_id"])

    async def history(self, thread_id: str, after_seq: int = 0,
                      limit: int = PAGE) -> list[TimelineEntry]:
        """Up to `limit` entries after `after_seq`, oldest first."""
        page = await self.request("GET", f"/api/threads/{thread_id}/messages",
                                  params={"after_seq": after_seq, "limit": limit})
        return [TIMELINE_ENTRIES.validate_python(item) for item in page]

    async def logout(self) -> None:
        """End this session on the server, then close."""
        await self.api.logout()
        await self.close()

    # -- realtime --------------------------------------------------------------------------

    async def connect(self, positions: Mapping[str, int] | None = None,
                      timeout: float = 30.0) -> None:  # noqa: ASYNC109
        """Connect and stay connected (reconnecting with backoff) until `close()`; returns once
        subscribed, or raises TimeoutError (and stops trying). Each thread starts at
        `positions[thread_id]` (a saved `positions()`), or at its current end; threads joined
        later start at their beginning."""
        self._outbox = Outbox(self.user_id)
        self._link = Link(self.api, self.broker, self._events, self._outbox, self.stats,
                          keepalive=self.keepalive, presence=self.presence,
                          positions=positions)
        self._link.start()
        try:
            await self._link.wait_connected(timeout)
        except BaseException:  # not connected in time, or refused for good: stop trying
            await self._link.stop()
            self._link = None
            raise

    def positions(self) -> dict[str, int]:
        """The highest seq delivered per thread, to resume from in a later `connect()`."""
        return self._link.timeline.positions() if self._link else {}

    def threads(self) -> set[str]:
        """The threads followed now."""
        return self._link.timeline.tracked() if self._link else set()

    async def events(self) -> AsyncIterator[DownlinkEvent]:
        """Every event received, typed; timeline entries (`MessageEvent`, `ThreadLogEvent`)
        once each and in seq order per thread, missed ones fetched. Ends after `close()`;
        raises SessionEndedError when the server ends the session."""
        while True:
            item = await self._events.get()
            if item is None or isinstance(item, BaseException):
                self._events.put_nowait(item)  # the end, for any later call too
                if item is None:
                    return
                raise item
            yield item

    async def send(self, thread_id: str, body: str | None = None, *, type: str = "text",
                   client_msg_id: str | None = None, **fields: Any) -> SendResult:
        """Send a message and return where it was stored (its `seq`). Sent again with the same
        `client_msg_id` until confirmed, so stored once; waits out rate limits. Raises
        CommandError when refused, SendTimeoutError after `send_deadline`. `fields`: reply_to,
        mentions, attachments."""
        if self._link is None or self._outbox is None:
            raise MqimClientError("connect() first")
        cmid = client_msg_id or f"sdk-{secrets.token_hex(12)}"
        payload = json.dumps({"op": "send", "req": cmid, "thread_id": thread_id,
                              "client_msg_id": cmid, "type": type, "body": body, **fields})
        pending = self._outbox.open(thread_id, cmid)
        self.stats.sends += 1
        try:
            return await self._until_confirmed(self._link, pending, payload.encode())
        finally:
            self._outbox.close(cmid)

    async def _until_confirmed(self, link: Link, pending: Pending, payload: bytes) -> SendResult:
        loop = asyncio.get_running_loop()
        deadline, attempts = loop.time() + self.send_deadline, 0
        while (remaining := deadline - loop.time()) > 0:
            try:
                mqtt = await link.wait_connected(remaining)
            except TimeoutError:
                break
            attempts += 1
            self.stats.retries += attempts > 1
            lost = link.lost
            try:
                await mqtt.publish(link.uplink, payload, qos=1,
                                   timeout=max(self.send_timeout, 1.0))
            except aiomqtt.MqttError:  # dropped: try again on the next connection
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), min(1.0, remaining))
                continue
            dropped = asyncio.ensure_future(lost.wait())
            waiters: list[asyncio.Future[Any]] = [pending.future, dropped]
            await asyncio.wait(waiters, timeout=self.send_timeout,
                               return_when=asyncio.FIRST_COMPLETED)
            dropped.cancel()
            if pending.future.done():
                try:
                    return pending.future.result()
                except CommandError as exc:
                    if exc.code != RATE_LIMITED or exc.retry_after is None:
                        raise
                    pending.retry()  # a refused attempt costs nothing: wait, send again
                    await asyncio.sleep(min(exc.retry_after, max(0.0, deadline - loop.time())))
                    continue
            if pending.echo is not None:  # the ack was lost, the echo got through
                self.stats.confirmed_by_echo += 1
                return pending.echo
        raise SendTimeoutError(pending.thread_id, pending.client_msg_id, attempts)

    # -- actions on messages (docs/messages.md): each answers with the entry it wrote ----------

    async def react(self, thread_id: str, message_id: str, emoji: str) -> ActionResult:
        return await self._call("react", thread_id=thread_id, message_id=message_id,
                                emoji=emoji)

    async def unreact(self, thread_id: str, message_id: str, emoji: str) -> ActionResult:
        return await self._call("unreact", thread_id=thread_id, message_id=message_id,
                                emoji=emoji)

    async def unsend(self, thread_id: str, message_id: str) -> ActionResult:
        return await self._call("unsend", thread_id=thread_id, message_id=message_id)

    async def edit(self, thread_id: str, message_id: str, body: str | None = None,
                   content: dict[str, Any] | None = None) -> ActionResult:
        return await self._call("edit", thread_id=thread_id, message_id=message_id, body=body,
                                content=content)

    async def vote(self, thread_id: str, poll_id: str, option_ids: list[int]) -> ActionResult:
        """Replace the caller's votes (an empty list takes them back)."""
        return await self._call("vote", thread_id=thread_id, poll_id=poll_id,
                                option_ids=option_ids)

    async def _call(self, op: str, **fields: Any) -> ActionResult:
        """Publish a command and wait for its ack; published again on a new connection until
        answered. These commands are idempotent (a repeat changes nothing: `seq` None), so a
        repeat after a lost ack is safe. CommandError when refused, TimeoutError after
        `send_deadline`."""
        if self._link is None or self._outbox is None:
            raise MqimClientError("connect() first")
        req = f"sdk-{op}-{secrets.token_hex(8)}"
        answer = self._outbox.expect(req)
        payload = json.dumps({"op": op, "req": req, **fields}).encode()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.send_deadline
        try:
            while (remaining := deadline - loop.time()) > 0:
                mqtt = await self._link.wait_connected(remaining)
                with contextlib.suppress(aiomqtt.MqttError):  # dropped: on the next connection
                    await mqtt.publish(self._link.uplink, payload, qos=1,
                                       timeout=max(self.send_timeout, 1.0))
                    await asyncio.wait([answer], timeout=self.send_timeout)
                if answer.done():
                    return answer.result()
            raise TimeoutError(f"{op} unanswered after {self.send_deadline} s")
        finally:
            self._outbox.forget(req)

    async def close(self) -> None:
        """Say offline, disconnect, end `events()`. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._link is not None:
            await self._link.stop()
        self._events.put_nowait(None)
        await self.api.aclose()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

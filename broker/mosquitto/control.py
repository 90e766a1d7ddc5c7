"""The client of mqim's Mosquitto plugin: tell the broker about memberships, sessions, bans, rules.

The plugin (the C sources beside this module) keeps that state in memory and takes JSON commands
on `$CONTROL/mqim/v1`, like Mosquitto's dynamic-security plugin; it answers on
`$CONTROL/mqim/v1/response` with one entry per command, echoing the request's `id`.

`MosquittoControl` owns its own MQTT connection (made by the factory it is given, as a service
account): aiomqtt hands every message of a connection to one `messages` iterator, which the
bridge's connection already consumes. It does not reconnect; a caller that loses the connection
enters a new one. The plugin starts empty and "not ready" (user logins turned away) after a
broker start or a `reset`. So one process (the bridge) syncs the full state when `status()`
says the plugin is not ready: `reset()`, read the state from the database, then
`sync(..., reset=False)`, which ends with the `ready` command; live changes sent meanwhile win
over the older data of the sync. Concurrent syncs from several processes must be avoided: each
one's reset wipes what the other sent so far.

It also satisfies `broker.acl.AccessSync`, so the API can tell it about changes as they commit.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack, suppress
from types import TracebackType
from typing import Any, Self

import aiomqtt

from broker.acl import ExtraRule
from broker.errors import BrokerError

logger = logging.getLogger(__name__)

CONTROL_TOPIC = "$CONTROL/mqim/v1"
RESPONSE_TOPIC = "$CONTROL/mqim/v1/response"
# At most this many commands, and about this many bytes, per control message.
MAX_COMMANDS = 1000
MAX_MESSAGE_BYTES = 64 * 1024
# A thread's members are sent in slices of this many ids.
MAX_USERS_PER_COMMAND = 5000

Command = dict[str, Any]
Rule = ExtraRule | Mapping[str, Any]


class ControlError(BrokerError):
    """The plugin refused commands, did not answer in time, or the connection is gone."""

    def __init__(self, message: str, errors: Sequence[Mapping[str, Any]] = ()) -> None:
        super().__init__(message)
        self.errors = list(errors)


def rule_command(rules: Iterable[Rule]) -> Command:
    """The `setRules` command; an ExtraRule for everyone (`user_id` None) becomes users ["*"]."""
    out: list[Mapping[str, Any]] = []
    for rule in rules:
        if isinstance(rule, ExtraRule):
            users = ["*"] if rule.user_id is None else [rule.user_id]
            out.append({"users": users, "topic": rule.topic, "access": rule.access})
        else:
            out.append(dict(rule))
    return {"command": "setRules", "rules": out}


def _member_commands(thread_id: str, user_ids: Collection[str], *, replace: bool) -> list[Command]:
    users = sorted(user_ids)
    step = MAX_USERS_PER_COMMAND
    slices = [users[i:i + step] for i in range(0, len(users), step)]
    if not slices:
        return [{"command": "dropThread", "thread": thread_id}] if replace else []
    first = "setMembers" if replace else "addMembers"
    return [{"command": first, "thread": thread_id, "users": slices[0]}] + [
        {"command": "addMembers", "thread": thread_id, "users": s} for s in slices[1:]
    ]


def chunk_commands(commands: Iterable[Command]) -> list[list[Command]]:
    """Split into messages of at most MAX_COMMANDS commands and about MAX_MESSAGE_BYTES."""
    chunks: list[list[Command]] = []
    current: list[Command] = []
    size = 0
    for command in commands:
        length = len(json.dumps(command, separators=(",", ":"))) + 1
        if current and (len(current) >= MAX_COMMANDS or size + length > MAX_MESSAGE_BYTES):
            chunks.append(current)
            current, size = [], 0
        current.append(command)
        size += length
    if current:
        chunks.append(current)
    return chunks


class MosquittoControl:
    """`async with MosquittoControl(factory) as control: await control.add_members(...)`.

    `factory` makes an unconnected aiomqtt client logged in as a service account, with a client
    id of its own. Calls may run concurrently; each waits for its answer up to `timeout` s.
    """

    def __init__(self, factory: Callable[[], aiomqtt.Client], *, timeout: float = 10.0) -> None:
        self._factory = factory
        self._timeout = timeout
        self._client: aiomqtt.Client | None = None
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._stack: AsyncExitStack | None = None
        self._reader: asyncio.Task[None] | None = None
        self._closed_reason: str | None = None

    async def __aenter__(self) -> Self:
        async with AsyncExitStack() as stack:
            try:
                client = await stack.enter_async_context(self._factory())
                # QoS 0: the client then sends no PUBACK for an answer, which Nagle's
                # algorithm would hold the next request behind until the broker's delayed
                # ACK (~40 ms per round trip). Answers are lost only with the connection,
                # and then every pending call fails anyway.
                await client.subscribe(RESPONSE_TOPIC, qos=0)
            except aiomqtt.MqttError as exc:
                raise ControlError(f"cannot connect the control client: {exc}") from exc
            self._client = client
            self._closed_reason = None
            self._reader = asyncio.create_task(self._read(client), name="mosquitto-control")
            self._stack = stack.pop_all()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
        self._fail_pending("the control client was closed")
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            with suppress(aiomqtt.MqttError):
                await stack.aclose()

    async def _read(self, client: aiomqtt.Client) -> None:
        try:
            async for message in client.messages:
                self._dispatch(message.payload)
        except aiomqtt.MqttError as exc:
            logger.warning("mosquitto control connection lost: %s", exc)
            self._fail_pending(f"the control connection was lost: {exc}")

    def _dispatch(self, payload: Any) -> None:
        try:
            reply = json.loads(payload)
        except (TypeError, ValueError):
            logger.warning("ignored a malformed control response")
            return
        if not isinstance(reply, dict):
            return
        future = self._pending.get(str(reply.get("id")))
        if future is not None and not future.done():
            future.set_result(reply)

    def _fail_pending(self, reason: str) -> None:
        self._closed_reason = reason
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ControlError(reason))

    async def run(self, commands: Sequence[Command], *, sync: bool = False) -> list[dict[str, Any]]:
        """Send one control message and return its per-command responses.

        `sync` marks the commands as part of a full sync (see `sync`): the plugin then skips
        those that a live change since the last reset already superseded (`"skipped": true`).
        Raises ControlError if any command failed (with every failure in `.errors`), if the
        plugin does not answer within the timeout, or if the connection is gone.
        """
        client = self._client
        if client is None or self._closed_reason is not None:
            raise ControlError(self._closed_reason or "the control client is not connected")
        request_id = uuid.uuid4().hex
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            request: dict[str, Any] = {"id": request_id, "commands": list(commands)}
            if sync:
                request["sync"] = True
            payload = json.dumps(request)
            await client.publish(CONTROL_TOPIC, payload, qos=1)
            async with asyncio.timeout(self._timeout):
                reply = await future
        except TimeoutError as exc:
            raise ControlError(f"no answer from the Mosquitto plugin in {self._timeout} s") from exc
        except aiomqtt.MqttError as exc:
            raise ControlError(f"cannot send control commands: {exc}") from exc
        finally:
            self._pending.pop(request_id, None)
        responses = reply.get("responses")
        if not isinstance(responses, list):
            responses = []
        errors = [r for r in responses if isinstance(r, dict) and r.get("error")]
        if reply.get("error") or errors or len(responses) != len(commands):
            problems = [reply["error"]] if reply.get("error") else []
            problems += [f"{r.get('command')}: {r['error']}" for r in errors]
            raise ControlError(
                "the Mosquitto plugin refused: " + "; ".join(problems or ["incomplete answer"]),
                errors,
            )
        return responses

    # Typed commands ----------------------------------------------------------------------

    async def set_members(self, thread_id: str, user_ids: Collection[str]) -> None:
        """Replace the thread's members (an empty collection drops the thread)."""
        for chunk in chunk_commands(_member_commands(thread_id, user_ids, replace=True)):
            await self.run(chunk)

    async def add_members(self, thread_id: str, user_ids: Collection[str]) -> None:
        for chunk in chunk_commands(_member_commands(thread_id, user_ids, replace=False)):
            await self.run(chunk)

    async def remove_members(self, thread_id: str, user_ids: Collection[str]) -> None:
        """Removed members stop receiving the thread at once; they are not disconnected."""
        users = sorted(user_ids)
        for i in range(0, len(users), MAX_USERS_PER_COMMAND):
            command = {"command": "removeMembers", "thread": thread_id,
                       "users": users[i:i + MAX_USERS_PER_COMMAND]}
            await self.run([command])

    async def drop_thread(self, thread_id: str) -> None:
        await self.run([{"command": "dropThread", "thread": thread_id}])

    async def end_session(self, user_id: str, session_id: str, until_epoch: int) -> None:
        """Refuse the session's token until `until_epoch` (its expiry) and kick its connections."""
        await self.run([{"command": "endSession", "user": user_id, "session": session_id,
                         "until": int(until_epoch)}])

    async def ban_user(self, user_id: str) -> None:
        """Refuse the user's logins and kick every connection of the user."""
        await self.run([{"command": "banUser", "user": user_id}])

    async def unban_user(self, user_id: str) -> None:
        await self.run([{"command": "unbanUser", "user": user_id}])

    async def set_rules(self, rules: Iterable[Rule]) -> None:
        """Replace the extra rules: ExtraRule values or {"users", "topic", "access"} mappings."""
        await self.run([rule_command(rules)])

    async def status(self) -> dict[str, Any]:
        """What the plugin holds: `ready` (false after a broker start or a reset, until a
        sync), and the numbers of memberships, threads, endedSessions, banned, rules and
        clients (user connections it can kick by session)."""
        (entry,) = await self.run([{"command": "status"}])
        return {k: v for k, v in entry.items() if k != "command"}

    async def reset(self) -> None:
        """Forget everything; users are refused until the next `sync`."""
        await self.run([{"command": "reset"}])

    async def sync(
        self,
        memberships: Mapping[str, Collection[str]],
        rules: Iterable[Rule] = (),
        ended_sessions: Iterable[tuple[str, str, int]] = (),
        banned_users: Iterable[str] = (),
        *,
        reset: bool = True,
    ) -> list[dict[str, Any]]:
        """Replace the plugin's whole state, then let users in.

        `memberships` maps thread ids to member ids; `ended_sessions` holds (user id, session
        id, until epoch) of ended sessions whose tokens may not have expired yet. Sent as a
        reset, the state in messages of at most MAX_COMMANDS commands, then `ready`. Until
        `ready`, users are refused, and connections already open get only what the state sent
        so far grants.

        Changes sent live (the typed commands, `AccessSync`) while a sync is under way win over
        the sync's data for the same thread, ban or rule set. So, to lose no change that commits
        while the state is read from the database: `await control.reset()`, then read the state,
        then `sync(..., reset=False)`. One process should own the sync (the bridge); others only
        send live changes.

        Commands the plugin refuses (an id it cannot store) are logged and returned, and the
        rest still goes through, so one bad row cannot keep every user out. A lost connection
        or a timeout raises ControlError, and users stay out until a sync completes.
        """
        commands: list[Command] = [{"command": "reset"}] if reset else []
        commands.append(rule_command(rules))
        commands += [{"command": "banUser", "user": u} for u in banned_users]
        commands += [{"command": "endSession", "user": u, "session": s, "until": int(t)}
                     for u, s, t in ended_sessions]
        for thread_id, user_ids in memberships.items():
            commands += _member_commands(thread_id, user_ids, replace=False)
        commands.append({"command": "ready"})
        refused: list[dict[str, Any]] = []
        for chunk in chunk_commands(commands):
            try:
                await self.run(chunk, sync=True)
            except ControlError as exc:
                if not exc.errors:
                    raise
                refused += [dict(e) for e in exc.errors]
        if refused:
            logger.warning("the Mosquitto plugin refused %d sync commands, e.g. %s",
                           len(refused), refused[0])
        return refused

    # broker.acl.AccessSync ---------------------------------------------------------------

    async def membership_changed(self, thread_id: str, member_ids: Sequence[str]) -> None:
        await self.set_members(thread_id, member_ids)

    async def session_ended(self, user_id: str, session_id: str, until: int) -> None:
        await self.end_session(user_id, session_id, until)

    async def user_banned(self, user_id: str, banned: bool) -> None:
        if banned:
            await self.ban_user(user_id)
        else:
            await self.unban_user(user_id)

    async def rules_changed(self, rules: Sequence[ExtraRule]) -> None:
        await self.set_rules(rules)

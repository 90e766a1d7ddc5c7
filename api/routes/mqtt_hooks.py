"""HTTP auth hooks for brokers that delegate auth (cluster mode): thin adapters over `decide`.

Each broker gets its own documented request and reply format; every decision is made by
`api.mqtt_decide.decide`. Routes (all under `/api/internal/mqtt/`):

- `go-auth/{user,superuser,acl}`: mosquitto-go-auth's HTTP backend, and amqtt's contrib
  `UserAuthHttpPlugin`/`TopicAuthHttpPlugin`. JSON or form bodies, `clientid` or `client_id`;
  `?mode=status|json|text` picks the reply format (default status: 200 allow, 403 deny).
- `emqx/{authn,authz}`: EMQX 5 HTTP authentication and authorization.
- `vernemq`: VerneMQ webhooks, dispatched on the `vernemq-hook` header.

Every route needs the shared secret `MQIM_MQTT_HOOK_SECRET`, presented as
`Authorization: Bearer <secret>`, `X-Mqim-Hook-Secret: <secret>` or, for brokers that cannot send
headers (mosquitto-go-auth, amqtt, VerneMQ), `?secret=<secret>` in the configured URL. With the
setting empty the routes answer 404 like any unknown path. A wrong secret is 401 and a malformed
request 400, both in the error envelope (docs/design.md section 5); a denial is never an error
status except in
go-auth's status mode, where the status is the answer.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal, TypeVar
from urllib.parse import parse_qsl

from pydantic import BaseModel, ConfigDict, StrictBool, StrictInt, StrictStr
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from api.auth import state_of
from api.envelope import error_response, ok
from api.mqtt_decide import Decision, HookAction, decide
from api.schemas import parse_body, read_body
from api.state import ApiState
from contract.errors import InvalidParameterError, NotFoundError, TokenInvalidError
from contract.hooks import (
    VMQ_NOT_ALLOWED,
    VMQ_OK,
    EmqxAclRule,
    EmqxAuthnReply,
    EmqxAuthzReply,
    GoAuthJson,
    GoAuthStatus,
    VmqModifiers,
    VmqReply,
    VmqTopicGrant,
)
from contract.jsonin import decode_json
from contract.validation import validate

BASE = "/api/internal/mqtt"
T = TypeVar("T", bound=BaseModel)
# Query parameters of ours, never part of a go-auth request read from the query string.
_OWN_PARAMS = frozenset({"mode", "secret"})


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


def hook_state(request: Request) -> ApiState:
    """The API state, once the request has shown the hook secret (404 when hooks are off)."""
    state = state_of(request)
    secret = state.ctx.settings.mqtt_hook_secret
    if not secret:
        raise NotFoundError("Not Found")
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    presented = [
        request.headers.get("x-mqim-hook-secret", ""),
        token.strip() if scheme.lower() == "bearer" else "",
        request.query_params.get("secret", ""),
    ]
    expected = _digest(secret)
    matches = [hmac.compare_digest(_digest(p), expected) for p in presented]
    if not any(matches):
        raise TokenInvalidError("missing or wrong MQTT hook secret")
    return state


class _Hook(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)




# --- mosquitto-go-auth / amqtt contrib HTTP ----------------------------------------------------


class GoAuthUser(_Hook):
    username: str | None = None
    password: str | None = None
    clientid: str | None = None
    client_id: str | None = None


class GoAuthSuperuser(_Hook):
    username: str | None = None


class GoAuthAcl(_Hook):
    username: str | None = None
    topic: str
    clientid: str | None = None
    client_id: str | None = None
    # Lax int: form bodies carry it as text.
    acc: int


_GO_AUTH_ACC = {
    1: HookAction.RECEIVE, 2: HookAction.PUBLISH, 3: HookAction.READWRITE,
    4: HookAction.SUBSCRIBE,
}
_GO_AUTH_MODES = ("status", "json", "text")


async def _go_auth_params(request: Request) -> dict[str, Any]:
    """The request's parameters: a JSON object, a form body, or (GET without body) the query."""
    raw = await read_body(request)
    content_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if content_type == "application/x-www-form-urlencoded":
        try:
            text = raw.decode()
            return dict(parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text)))
        except (UnicodeDecodeError, ValueError) as exc:
            raise InvalidParameterError(f"request body is not a valid form: {exc}") from exc
    if not raw.strip() and request.method == "GET":
        return {k: v for k, v in request.query_params.items() if k not in _OWN_PARAMS}
    data = decode_json(raw, what="request body")
    if not isinstance(data, dict):
        raise InvalidParameterError("request body must be a JSON object")
    return data


def _go_auth_reply(request: Request, decision: Decision) -> Response:
    mode = request.query_params.get("mode", "status")
    if mode == "json":
        return JSONResponse(GoAuthJson(Ok=decision.allowed, Error=decision.reason).body())
    if mode == "text":
        return PlainTextResponse("ok" if decision.allowed else "error")
    if decision.allowed:
        return ok(GoAuthStatus())
    return error_response(403, 1004, "forbidden", decision.reason)


GoAuthHandler = Callable[[ApiState, dict[str, Any]], Awaitable[Decision]]


def _go_auth_route(handler: GoAuthHandler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        state = hook_state(request)
        mode = request.query_params.get("mode", "status")
        if mode not in _GO_AUTH_MODES:
            raise InvalidParameterError(f"mode must be one of {', '.join(_GO_AUTH_MODES)}")
        decision = await handler(state, await _go_auth_params(request))
        return _go_auth_reply(request, decision)

    return endpoint


async def _go_auth_user(state: ApiState, params: dict[str, Any]) -> Decision:
    body = validate(GoAuthUser, params)
    return await decide(
        state, HookAction.CONNECT, username=body.username, password=body.password,
        client_id=body.clientid if body.clientid is not None else body.client_id,
    )


async def _go_auth_superuser(state: ApiState, params: dict[str, Any]) -> Decision:
    body = validate(GoAuthSuperuser, params)
    return await decide(state, HookAction.SUPERUSER, username=body.username)


async def _go_auth_acl(state: ApiState, params: dict[str, Any]) -> Decision:
    body = validate(GoAuthAcl, params)
    action = _GO_AUTH_ACC.get(body.acc)
    if action is None:
        raise InvalidParameterError("acc must be 1 (read), 2 (write), 3 (readwrite) or 4 "
                                    "(subscribe)")
    return await decide(state, action, username=body.username, topic=body.topic)


# --- EMQX 5 ------------------------------------------------------------------------------------


class EmqxAuthn(_Hook):
    username: StrictStr | None
    password: StrictStr | None = None
    clientid: StrictStr


class EmqxAuthz(_Hook):
    username: StrictStr | None
    clientid: StrictStr
    topic: StrictStr
    action: Literal["publish", "subscribe"]
    # `"${retain}"` renders as a string; absent means not retained.
    retain: StrictBool | Literal["true", "false"] = False


def emqx_user_acl(state: ApiState) -> list[EmqxAclRule]:
    """The static part of every user's rights, in EMQX's ACL rule format (5.5+).

    No final deny: thread topics (membership changes while connected) and admin rules fall
    through to the authz hook, which `authorization.no_match = deny` must back.
    """
    me = "${username}"
    return [
        EmqxAclRule(permission="deny", action="publish", topic="#", retain=True),
        EmqxAclRule(permission="allow", action="publish", topic=state.ctx.topics.uplink(me)),
        EmqxAclRule(permission="allow", action="subscribe", topic=state.ctx.topics.user(me)),
    ]


async def emqx_authn(request: Request) -> Response:
    state = hook_state(request)
    body = await parse_body(request, EmqxAuthn)
    decision = await decide(state, HookAction.CONNECT, username=body.username,
                            password=body.password, client_id=body.clientid)
    if not decision.allowed:
        return JSONResponse(EmqxAuthnReply(result="deny", is_superuser=False).body())
    if decision.superuser:
        return JSONResponse(EmqxAuthnReply(result="allow", is_superuser=True).body())
    return JSONResponse(EmqxAuthnReply(result="allow", is_superuser=False,
                                  expire_at=decision.expires_at,
                                  acl=emqx_user_acl(state)).body())


async def emqx_authz(request: Request) -> Response:
    state = hook_state(request)
    body = await parse_body(request, EmqxAuthz)
    action = HookAction.PUBLISH if body.action == "publish" else HookAction.SUBSCRIBE
    decision = await decide(state, action, username=body.username, topic=body.topic,
                            retain=body.retain in (True, "true"))
    return JSONResponse(EmqxAuthzReply(result="allow" if decision.allowed else "deny").body())


# --- VerneMQ webhooks --------------------------------------------------------------------------


class VmqRegister(_Hook):
    username: StrictStr | None
    password: StrictStr | None = None
    client_id: StrictStr


class VmqTopic(BaseModel):
    # Kept whole: MQTT 5 entries carry subscription options (no_local, rap, retain_handling)
    # that VerneMQ resets to defaults unless the reply repeats them.
    model_config = ConfigDict(extra="allow", frozen=True)
    topic: StrictStr
    qos: StrictInt


class VmqSubscribe(_Hook):
    username: StrictStr | None
    client_id: StrictStr
    topics: list[VmqTopic]


class VmqPublish(_Hook):
    username: StrictStr | None
    client_id: StrictStr
    topic: StrictStr
    qos: StrictInt
    retain: StrictBool = False


# VerneMQ caches a reply that carries `cache-control: max-age=N` (errors never), keyed by every
# request field but the payload, and never drops expired entries. Register (the password is a
# per-login token) and subscribe (membership) are not cached; a publish decision does not
# depend on membership, and caching it saves a round trip per message.
NO_CACHE = {"cache-control": "no-store"}
PUBLISH_CACHE = {"cache-control": "max-age=60"}
_MQTT5_NOT_AUTHORIZED = 135
_MQTT3_FAILURE = 128


async def _vmq_register(state: ApiState, request: Request, mqtt5: bool) -> Response:
    body = await parse_body(request, VmqRegister)
    decision = await decide(state, HookAction.CONNECT, username=body.username,
                            password=body.password, client_id=body.client_id)
    reply = VMQ_OK if decision.allowed else VMQ_NOT_ALLOWED
    return JSONResponse(reply.body(), headers=NO_CACHE)


async def _vmq_subscribe(state: ApiState, request: Request, mqtt5: bool) -> Response:
    body = await parse_body(request, VmqSubscribe)
    refused = _MQTT5_NOT_AUTHORIZED if mqtt5 else _MQTT3_FAILURE
    topics: list[VmqTopicGrant] = []
    for entry in body.topics:
        decision = await decide(state, HookAction.SUBSCRIBE, username=body.username,
                                topic=entry.topic)
        if decision.allowed:
            topics.append(VmqTopicGrant.model_validate(entry.model_dump()))
        else:
            topics.append(VmqTopicGrant(topic=entry.topic, qos=refused))
    # MQTT 5 rewrites go in `modifiers`; the 3.1.1 hook reads `topics` at the top level.
    reply = (VmqReply(result="ok", modifiers=VmqModifiers(topics=topics)) if mqtt5
             else VmqReply(result="ok", topics=topics))
    return JSONResponse(reply.body(), headers=NO_CACHE)


async def _vmq_publish(state: ApiState, request: Request, mqtt5: bool) -> Response:
    body = await parse_body(request, VmqPublish)
    decision = await decide(state, HookAction.PUBLISH, username=body.username, topic=body.topic,
                            retain=body.retain)
    if decision.allowed:
        return JSONResponse(VMQ_OK.body(), headers=PUBLISH_CACHE)
    return JSONResponse(VMQ_NOT_ALLOWED.body(), headers=NO_CACHE)


VmqHandler = Callable[[ApiState, Request, bool], Awaitable[Response]]
_VMQ_HOOKS: Mapping[str, tuple[VmqHandler, bool]] = {
    "auth_on_register": (_vmq_register, False),
    "auth_on_register_m5": (_vmq_register, True),
    "auth_on_subscribe": (_vmq_subscribe, False),
    "auth_on_subscribe_m5": (_vmq_subscribe, True),
    "auth_on_publish": (_vmq_publish, False),
    "auth_on_publish_m5": (_vmq_publish, True),
}


async def vernemq(request: Request) -> Response:
    state = hook_state(request)
    hook = request.headers.get("vernemq-hook", "")
    if hook not in _VMQ_HOOKS:
        raise InvalidParameterError(
            f"unsupported vernemq-hook {hook!r}; register only {', '.join(_VMQ_HOOKS)}"
        )
    handler, mqtt5 = _VMQ_HOOKS[hook]
    return await handler(state, request, mqtt5)


_GO_AUTH_METHODS = ["GET", "POST", "PUT"]

routes = [
    Route(f"{BASE}/go-auth/user", _go_auth_route(_go_auth_user), methods=_GO_AUTH_METHODS),
    Route(f"{BASE}/go-auth/superuser", _go_auth_route(_go_auth_superuser),
          methods=_GO_AUTH_METHODS),
    Route(f"{BASE}/go-auth/acl", _go_auth_route(_go_auth_acl), methods=_GO_AUTH_METHODS),
    Route(f"{BASE}/emqx/authn", emqx_authn, methods=["POST"]),
    Route(f"{BASE}/emqx/authz", emqx_authz, methods=["POST"]),
    Route(f"{BASE}/vernemq", vernemq, methods=["POST"]),
]

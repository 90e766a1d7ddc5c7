"""RabbitMQ's HTTP auth backend (rabbitmq_auth_backend_http) over `decide`: cluster mode on
RabbitMQ's MQTT plugin (docs/deploy-cluster.md).

Routes under `/api/internal/mqtt/rabbitmq/`: `user`, `vhost`, `resource`, `topic`, each GET or
POST (as `auth_http.http_method` says), form fields in, `allow`/`deny` out as text/plain.

- user: a user logs in with user id + access JWT and a client id of theirs (the MQTT plugin
  sends it); the service accounts as in the other hooks. No tags: nobody gets management rights
  through mqim (the operator's admin account lives in RabbitMQ's internal backend).
- vhost: users only the MQTT plugin's vhost `/`.
- resource: what an MQTT session needs and nothing else: its own subscription queues
  `mqtt-subscription-<client id>qos0|qos1` and reading/writing `amq.topic`.
- topic: the topic rule, on the routing key mapped back to the MQTT topic
  (contract.hooks_rabbitmq.routing_key_to_topic: ids may contain dots).

The secret is `?secret=` in each configured URL. With GET the backend appends its own `?...`
to that URL, so the query reads `secret=S?username=...`: split at the second `?`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from api.mqtt_decide import Decision, HookAction, decide
from api.routes.mqtt_hooks import BASE, hook_state
from api.schemas import read_body
from api.state import ApiState
from broker.embedded.plugins import owns_client_id
from contract.errors import InvalidParameterError
from contract.hooks_rabbitmq import (
    ALLOW,
    DENY,
    MQTT_EXCHANGE,
    MQTT_VHOST,
    RabbitResource,
    RabbitTopic,
    RabbitUser,
    RabbitVhost,
    routing_key_to_topic,
    subscription_queue_client,
)
from contract.validation import validate

RABBITMQ = f"{BASE}/rabbitmq"
T = TypeVar("T", bound=BaseModel)


def _split_query(raw: bytes, method: str) -> tuple[bytes, bytes]:
    """(our own query, the backend's GET parameters) of a raw query string."""
    own, sep, asked = raw.partition(b"?")
    if sep:
        return own, asked
    return raw, raw if method == "GET" else b""


def _form(raw: bytes) -> dict[str, str]:
    try:
        text = raw.decode()
        return dict(parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text)))
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidParameterError(f"request is not a valid form: {exc}") from exc


async def _ask(request: Request, model: type[T]) -> tuple[ApiState, T]:
    """The checked secret's API state and the backend's question."""
    own, asked = _split_query(request.scope.get("query_string", b""), request.method)
    # hook_state reads `secret` from the query: hand it our part only.
    state = hook_state(Request({**request.scope, "query_string": own}, request.receive))
    params: dict[str, Any] = _form(asked)
    params.pop("secret", None)
    if request.method == "POST":
        params = _form(await read_body(request))
    return state, validate(model, params)


def _reply(allowed: bool) -> Response:
    return PlainTextResponse(ALLOW if allowed else DENY)


async def _is_service(state: ApiState, username: str) -> bool:
    return (await decide(state, HookAction.SUPERUSER, username=username)).allowed


async def user(request: Request) -> Response:
    state, ask = await _ask(request, RabbitUser)
    decision = await decide(state, HookAction.CONNECT, username=ask.username,
                            password=ask.password, client_id=ask.client_id)
    return _reply(decision.allowed)


async def vhost(request: Request) -> Response:
    state, ask = await _ask(request, RabbitVhost)
    return _reply(ask.vhost == MQTT_VHOST or await _is_service(state, ask.username))


def _user_may_use(ask: RabbitResource) -> bool:
    if ask.vhost != MQTT_VHOST:
        return False
    if ask.resource == "queue":
        owner = subscription_queue_client(ask.name)
        # The client id in the name must be the user's and, when sent, the asking client's:
        # another client of the same user may not drain this one's queue.
        return (owner is not None and owns_client_id(ask.username, owner)
                and ask.client_id in (None, owner))
    if ask.resource == "exchange":
        return ask.name == MQTT_EXCHANGE and ask.permission in ("read", "write")
    return False


async def resource(request: Request) -> Response:
    state, ask = await _ask(request, RabbitResource)
    return _reply(await _is_service(state, ask.username) or _user_may_use(ask))


async def topic(request: Request) -> Response:
    state, ask = await _ask(request, RabbitTopic)
    if ask.name != MQTT_EXCHANGE:
        return _reply(await _is_service(state, ask.username))
    action = HookAction.PUBLISH if ask.permission == "write" else HookAction.SUBSCRIBE
    mqtt_topic = routing_key_to_topic(ask.routing_key, state.ctx.topics.prefix)
    decision: Decision = await decide(state, action, username=ask.username, topic=mqtt_topic)
    return _reply(decision.allowed)


_METHODS = ["GET", "POST"]
_PATHS: dict[str, Callable[[Request], Awaitable[Response]]] = {
    "user": user, "vhost": vhost, "resource": resource, "topic": topic,
}
routes = [Route(f"{RABBITMQ}/{name}", endpoint, methods=_METHODS)
          for name, endpoint in _PATHS.items()]

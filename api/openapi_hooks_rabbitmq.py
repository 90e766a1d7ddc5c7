"""The OpenAPI rows of RabbitMQ's HTTP auth backend routes (docs/deploy-cluster.md), merged
into api/openapi_routes.py beside HOOK_OPERATIONS. The backend sends form fields (a POST body,
or with GET the query appended to the configured URL) and reads `allow` or `deny`."""

from __future__ import annotations

from pydantic import BaseModel

from api.openapi_ops import Op
from api.routes import mqtt_hooks_rabbitmq
from contract.hooks_rabbitmq import RabbitResource, RabbitTopic, RabbitUser, RabbitVhost

_RABBIT = mqtt_hooks_rabbitmq.RABBITMQ
_ASKS: dict[str, tuple[type[BaseModel], str]] = {
    "user": (RabbitUser, "may this user log in"),
    "vhost": (RabbitVhost, "may this user open the virtual host"),
    "resource": (RabbitResource, "may this user use the exchange or queue"),
    "topic": (RabbitTopic, "may this user publish to or bind this routing key"),
}

RABBITMQ_HOOK_OPERATIONS: dict[tuple[str, str], Op] = {
    (method, f"{_RABBIT}/{name}"): Op(
        f"RabbitMQ HTTP auth backend: {summary}", "hook", raw="hook",
        hook_bodies=(model,) if method == "POST" else (), text_reply=("allow", "deny"))
    for name, (model, summary) in _ASKS.items() for method in ("GET", "POST")
}

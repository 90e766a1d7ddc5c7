"""The OpenAPI rows of the brokers' HTTP auth hooks (docs/deploy-cluster.md): their request
shapes (JSON or form) and their own reply formats, not mqim's envelope."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from api.openapi_ops import Op, Query
from api.routes import mqtt_hooks
from contract.hooks import EmqxAuthnReply, EmqxAuthzReply, GoAuthJson, VmqReply

VmqHook = Literal["auth_on_register", "auth_on_register_m5", "auth_on_subscribe",
                  "auth_on_subscribe_m5", "auth_on_publish", "auth_on_publish_m5"]
_HOOK = mqtt_hooks.BASE
_GO_AUTH: dict[str, type[BaseModel]] = {
    "user": mqtt_hooks.GoAuthUser, "superuser": mqtt_hooks.GoAuthSuperuser,
    "acl": mqtt_hooks.GoAuthAcl,
}

HOOK_OPERATIONS: dict[tuple[str, str], Op] = {
    **{(method, f"{_HOOK}/go-auth/{name}"): Op(
        f"mosquitto-go-auth: {name}", "hook", raw="hook",
        hook_bodies=(model,) if method != "GET" else (), hook_replies=GoAuthJson, go_auth=True,
        answers=((403, 1004, "forbidden"),),  # the denial of mode=status
        query=(Query("mode", Literal["status", "json", "text"], "reply format (default status)"),))
       for name, model in _GO_AUTH.items() for method in ("GET", "POST", "PUT")},
    ("POST", f"{_HOOK}/emqx/authn"): Op("EMQX 5 HTTP authentication", "hook", raw="hook",
                                        hook_bodies=(mqtt_hooks.EmqxAuthn,),
                                        hook_replies=EmqxAuthnReply),
    ("POST", f"{_HOOK}/emqx/authz"): Op("EMQX 5 HTTP authorization", "hook", raw="hook",
                                        hook_bodies=(mqtt_hooks.EmqxAuthz,),
                                        hook_replies=EmqxAuthzReply),
    ("POST", f"{_HOOK}/vernemq"): Op(
        "VerneMQ webhooks (by the vernemq-hook header)", "hook", raw="hook",
        hook_bodies=(mqtt_hooks.VmqRegister, mqtt_hooks.VmqSubscribe, mqtt_hooks.VmqPublish),
        hook_replies=VmqReply, query=(Query(
            "vernemq-hook", VmqHook, "which webhook",
            required=True, where="header"),)),
}

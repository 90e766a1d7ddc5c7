"""What mqim answers brokers that ask it who may do what (docs/deploy-cluster.md): the reply
formats of mosquitto-go-auth, EMQX 5 and VerneMQ webhooks, each as the broker documents it.

These are the brokers' formats, not mqim's: field names and casing follow each broker. The
routes in api/routes/mqtt_hooks.py build only these models.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


class _Reply(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def body(self) -> dict[str, Any]:
        """The JSON the broker reads (optional fields left out when unset)."""
        return self.model_dump(by_alias=True, exclude_none=True)


class GoAuthStatus(_Reply):
    """mosquitto-go-auth `mode=status`: allowed (the success envelope carries this as data)."""

    ok: Literal[True] = True


class GoAuthJson(_Reply):
    """mosquitto-go-auth `mode=json`."""

    Ok: bool  # go-auth's field names
    Error: str


class EmqxAclRule(_Reply):
    """One rule of the `acl` list EMQX 5.5+ takes from an authentication reply."""

    permission: Literal["allow", "deny"]
    action: Literal["publish", "subscribe", "all"]
    topic: str
    retain: bool | None = None


class EmqxAuthnReply(_Reply):
    result: Literal["allow", "deny"]
    is_superuser: bool
    # For users only: when the session's access token expires (EMQX disconnects then), and
    # the static part of their rights.
    expire_at: int | None = None
    acl: list[EmqxAclRule] | None = None


class EmqxAuthzReply(_Reply):
    result: Literal["allow", "deny"]


class VmqTopicGrant(BaseModel):
    """A subscription VerneMQ is told to make: as asked (MQTT 5 options kept), or with a
    refusal code as its qos."""

    model_config = ConfigDict(frozen=True, extra="allow")
    topic: str
    qos: int


class VmqError(_Reply):
    error: Literal["not_allowed"] = "not_allowed"


class VmqModifiers(_Reply):
    topics: list[VmqTopicGrant]


class VmqReply(_Reply):
    """`{"result": "ok"}`, a refusal `{"result": {"error": "not_allowed"}}`, or a subscribe's
    answer with its topics (at the top level for MQTT 3.1.1, in `modifiers` for MQTT 5)."""

    result: Literal["ok"] | VmqError
    topics: list[VmqTopicGrant] | None = None
    modifiers: VmqModifiers | None = None


VMQ_OK = VmqReply(result="ok")
VMQ_NOT_ALLOWED = VmqReply(result=VmqError())

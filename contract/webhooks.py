"""Outgoing webhooks on the wire (docs/webhooks.md): the event kinds a hook can ask for, the body
of `POST /api/webhooks`, what the webhook routes answer, and the JSON body POSTed to a receiver
(`WebhookPayload`, its `event` exactly the typed object MQTT publishes). Signing and delivery are
actions/webhooks.py's; the rows are models/webhook.py's."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr

from contract.fields import IdField
from contract.http import Shape

URL_MAX = 2048

EventKind = Literal["message", "mention", "direct_message", "member_joined", "member_left",
                    "thread_event", "message_action"]
EVENT_KINDS: tuple[str, ...] = ("message", "mention", "direct_message", "member_joined",
                                "member_left", "thread_event", "message_action")
DeliveryStatusName = Literal["pending", "delivered", "failed"]

# The request headers of every delivery.
HEADER_EVENT = "X-Mqim-Event"
HEADER_DELIVERY = "X-Mqim-Delivery"
HEADER_TIMESTAMP = "X-Mqim-Timestamp"
HEADER_SIGNATURE = "X-Mqim-Signature"
SIGNATURE_PREFIX = "sha256="

DELIVERIES_LIMIT_DEFAULT = 50
DELIVERIES_LIMIT_MAX = 200


class CreateWebhookBody(BaseModel):
    """`events` empty or absent: every kind. `bot_id`: a bot hook (the caller owns the bot);
    absent: a server hook (server admins only)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    url: StrictStr = Field(min_length=1, max_length=URL_MAX)
    events: list[EventKind] | None = Field(default=None, max_length=len(EVENT_KINDS))
    bot_id: IdField | None = None


class WebhookView(Shape):
    """A hook as `GET /api/webhooks` lists it (never its secret)."""

    id: int
    url: str
    events: list[EventKind]  # [] = every kind
    bot_id: str | None  # None: a server hook
    active: bool
    created_at: int  # epoch ms


class WebhookCreated(WebhookView):
    """`POST /api/webhooks`: the hook and its signing secret, shown only here."""

    secret: str


class WebhookDeleted(Shape):
    id: int
    deleted: Literal[True]


class DeliveryView(Shape):
    """One row of `GET /api/webhooks/{id}/deliveries`, newest first."""

    id: int
    kind: EventKind
    status: DeliveryStatusName
    attempts: int
    last_status: int | None  # the receiver's HTTP status at the last attempt, if it answered
    last_error: str | None
    created_at: int  # epoch ms
    delivered_at: int | None


class ReplayResult(Shape):
    """`POST /api/webhooks/{id}/replay`: how many failed deliveries are pending again."""

    replayed: int


class WebhookPayload(Shape):
    """The JSON body of a delivery; its id is in the X-Mqim-Delivery header."""

    kind: EventKind
    hook_id: int
    event: dict[str, Any]  # a contract.events TimelineEvent, as MQTT sends it

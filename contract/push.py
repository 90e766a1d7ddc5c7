"""The shapes of push notifications (docs/push.md): registering a device's push target, listing
them, the VAPID public key, and what a push carries to a device (`PushPayload`) or to a Matrix
push gateway (`GatewayRequest`).

Only the shapes and the checks that need no I/O: whether an endpoint's host is a public
address is decided in actions/pushsend.py (it resolves the name).
"""

from __future__ import annotations

import base64
import binascii
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr, model_validator

from contract.http import Shape

ENDPOINT_MAX = 2048
TARGETS_PER_SESSION = 10
PREVIEW_CHARS = 100
PushKindName = Literal["webpush", "unifiedpush", "gateway"]


def b64url_decode(value: str) -> bytes:
    """base64url with or without padding; ValueError if it is not."""
    if not value or len(value) > 200 or any(c in value for c in "+/ \n"):
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64url") from exc


def b64url_encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


class WebPushKeys(BaseModel):
    """A browser subscription's keys (PushSubscription.toJSON().keys): the user agent's P-256
    public key, uncompressed, and the 16-byte auth secret, both base64url."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    p256dh: StrictStr
    auth: StrictStr

    @model_validator(mode="after")
    def _decodes(self) -> WebPushKeys:
        key, auth = b64url_decode(self.p256dh), b64url_decode(self.auth)
        if len(key) != 65 or key[0] != 4:
            raise ValueError("keys.p256dh must be an uncompressed P-256 point (65 bytes)")
        if len(auth) != 16:
            raise ValueError("keys.auth must be 16 bytes")
        return self


class GatewayKeys(BaseModel):
    """What the gateway needs to find the device: the app it is registered under (Sygnal's
    app id) and the device's push key (an APNs or FCM token)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    app_id: StrictStr = Field(min_length=1, max_length=64)
    pushkey: StrictStr = Field(min_length=1, max_length=512)


class PushTargetBody(BaseModel):
    """POST /api/me/push-targets."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    kind: PushKindName
    endpoint: StrictStr = Field(min_length=1, max_length=ENDPOINT_MAX)
    keys: dict[str, object] | None = None

    def checked_keys(self) -> dict[str, str]:
        """The keys this kind needs, validated (ValueError naming the problem)."""
        if self.kind == "webpush":
            return WebPushKeys.model_validate(self.keys or {}).model_dump()
        if self.kind == "gateway":
            return GatewayKeys.model_validate(self.keys or {}).model_dump()
        return {}


class PushTargetInfo(Shape):
    """One push target, as its owner sees it (a web push target's auth secret is never shown
    again). `failures` counts failed sends in a row; a success resets it."""

    id: int
    kind: PushKindName
    endpoint: str
    keys: dict[str, str]
    session_id: str
    created_at: int
    last_success_at: int | None
    last_error: str | None
    failures: int


class VapidPublicKey(Shape):
    """GET /api/push/vapid-public-key: the application server key for
    `PushManager.subscribe({applicationServerKey})`, an uncompressed P-256 point, base64url."""

    public_key: str


class PushPayload(Shape):
    """What one notification carries to a device (web push: encrypted; UnifiedPush: as is):
    the newest of the member's unread messages in the burst, how many messages in the thread
    they have not read, and whether one of them mentions them. `preview` only when the
    operator allows previews (MQIM_PUSH_PREVIEWS)."""

    type: Literal["push"] = "push"
    thread_id: str
    seq: int
    count: int
    sender_id: str | None
    mention: bool
    preview: str | None = None


class GatewayCounts(Shape):
    unread: int


class GatewayDevice(Shape):
    app_id: str
    pushkey: str


class GatewayNotification(Shape):
    event_id: str
    room_id: str
    sender: str | None
    counts: GatewayCounts
    prio: Literal["high", "low"] = "high"
    devices: list[GatewayDevice]


class GatewayRequest(Shape):
    """The body POSTed to a Matrix push gateway (`/_matrix/push/v1/notify`)."""

    notification: GatewayNotification

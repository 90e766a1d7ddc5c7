"""Sending one push to one target (docs/push.md), for each kind, and the checks and keys they
need. No database here: actions/push.py records what each send did.

    check_endpoint(url, allow_insecure)   1001 unless an http(s) URL of a public address
    refused_origins(urls, settings)       the same check again before sending, once per origin
    load_vapid(settings) -> Vapid          the server's VAPID key, made on first use
    send(client, vapid, settings, target, payload, gateway) -> Outcome

- web push: RFC 8291 (aes128gcm, a fresh ECDH key and salt per message) with http_ece, RFC 8292
  VAPID with py_vapid, POSTed with the worker's client session (actions/httpout.py; nothing
  blocks the loop but the few milliseconds of the crypto, done in a thread);
- UnifiedPush: the payload's JSON bytes POSTed as they are;
- gateway: the Matrix push gateway's notify request; a `rejected` push key is a gone device.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import http_ece  # type: ignore[import-untyped]
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02  # type: ignore[import-untyped]

from actions import httpout
from actions.outbound import check_outbound_url
from config import Settings
from contract.errors import InvalidParameterError
from contract.push import ENDPOINT_MAX, GatewayRequest, PushPayload, b64url_decode, b64url_encode
from models.push import PushKind, PushTarget

_JSON = {"Content-Type": "application/json"}
TTL_SECONDS = 24 * 3600  # how long a push service may hold a web push for an offline device
VAPID_LIFETIME = 12 * 3600


@dataclass(frozen=True)
class Outcome:
    ok: bool
    gone: bool = False  # the subscription no longer exists: delete the target
    error: str | None = None


async def check_endpoint(url: str, *, allow_insecure: bool) -> None:
    """Refuse (1001) an endpoint the server must not send to (actions/outbound.py)."""
    await check_outbound_url(url, what="endpoint", max_chars=ENDPOINT_MAX,
                             allow_insecure=allow_insecure)


def vapid_path(settings: Settings) -> Path:
    return Path(settings.vapid_private_key or settings.data_dir / "vapid_private.pem")


def load_vapid(settings: Settings) -> Any:
    """The server's VAPID key (a py_vapid Vapid02). When it does not exist yet it is made and
    linked into place atomically, so two processes starting at once agree on one key."""
    path = vapid_path(settings)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fresh = Vapid02()
        fresh.generate_keys()
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        temporary.write_bytes(fresh.private_pem())
        temporary.chmod(0o600)
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process made one first: use theirs
        finally:
            temporary.unlink()
    return Vapid02.from_pem(path.read_bytes())


def vapid_public_key(vapid: Any) -> str:
    """The application server key: the public key as an uncompressed point, base64url."""
    public: ec.EllipticCurvePublicKey = vapid.public_key
    return b64url_encode(public.public_bytes(serialization.Encoding.X962,
                                             serialization.PublicFormat.UncompressedPoint))


def _web_push_request(vapid: Any, subject: str, target: PushTarget,
                      body: bytes) -> tuple[bytes, dict[str, str]]:
    """The encrypted body and the headers of one web push (CPU work: run in a thread)."""
    keys: dict[str, str] = target.keys
    sender = ec.generate_private_key(ec.SECP256R1())
    encrypted: bytes = http_ece.encrypt(
        body, salt=os.urandom(16), private_key=sender, dh=b64url_decode(keys["p256dh"]),
        auth_secret=b64url_decode(keys["auth"]), version="aes128gcm")
    parts = urlsplit(target.endpoint)
    claims = {"aud": f"{parts.scheme}://{parts.netloc}", "sub": subject,
              "exp": int(time.time()) + VAPID_LIFETIME}
    headers: dict[str, str] = dict(vapid.sign(claims))
    headers.update({"TTL": str(TTL_SECONDS), "Content-Encoding": "aes128gcm",
                    "Content-Type": "application/octet-stream", "Urgency": "high"})
    return encrypted, headers


def _failure(reply: httpout.Reply) -> Outcome:
    return Outcome(False, gone=reply.status in (404, 410), error=f"HTTP {reply.status}")


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


async def refused_origins(urls: Sequence[str], settings: Settings) -> dict[str, str]:
    """The origins among `urls` that check_endpoint refuses now, with why: checked again
    before sending, since a name may resolve elsewhere than when its target was added; once
    per origin, however many targets share a push service."""
    if settings.reach_allow_insecure:
        return {}
    origins = sorted({origin(u) for u in urls})

    async def why(o: str) -> str | None:
        try:
            await check_endpoint(o + "/", allow_insecure=False)
        except InvalidParameterError as exc:
            return f"refused endpoint: {exc}"
        return None

    answers = await asyncio.gather(*(why(o) for o in origins))
    return {o: a for o, a in zip(origins, answers, strict=True) if a is not None}


async def send(http: aiohttp.ClientSession, vapid: Any, settings: Settings, target: PushTarget,
               payload: PushPayload, gateway: GatewayRequest | None) -> Outcome:
    """POST one push; never raises for the target's own failures."""
    try:
        body = payload.model_dump_json(exclude_none=True).encode()
        if target.kind == PushKind.WEBPUSH:
            content, headers = await asyncio.to_thread(
                _web_push_request, vapid, settings.vapid_subject, target, body)
            reply = await httpout.post(http, target.endpoint, content, headers)
            return Outcome(True) if reply.ok else _failure(reply)
        if target.kind == PushKind.UNIFIEDPUSH:
            reply = await httpout.post(http, target.endpoint, body, _JSON)
            return Outcome(True) if reply.ok else _failure(reply)
        if gateway is None:
            return Outcome(False, error="no gateway request")
        reply = await httpout.post(http, target.endpoint, gateway.model_dump_json().encode(),
                                   _JSON, read_max=httpout.ANSWER_MAX)
        if not reply.ok:
            return Outcome(False, error=f"HTTP {reply.status}")
        answer = json.loads(reply.body)
        rejected = answer.get("rejected", []) if isinstance(answer, dict) else []
        if isinstance(rejected, list) and target.keys.get("pushkey") in rejected:
            return Outcome(False, gone=True, error="rejected by the gateway")
        return Outcome(True)
    except (httpout.OutboundError, ValueError, KeyError) as exc:
        return Outcome(False, error=f"{type(exc).__name__}: {exc}"[:200])

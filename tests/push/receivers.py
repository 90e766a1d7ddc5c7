"""Real push receivers, run by a test in its own process (a Starlette app under uvicorn on a
free loopback port), that mqim's worker reaches over real HTTP:

- a web push endpoint per subscription (`/webpush/{name}`), which holds the subscription's
  ECDH P-256 private key and auth secret, as a browser would, and DECRYPTS each push
  (RFC 8291 aes128gcm, http_ece) after checking its VAPID Authorization header (RFC 8292:
  signed by the server's public key, for this origin);
- a UnifiedPush endpoint (`/up/{name}`): the JSON body as it came;
- a Matrix push gateway (`/_matrix/push/v1/notify`): the notify request, answering
  `rejected` for the push keys it is told to reject.

Each answers with the status a test set for its name (410: the subscription is gone).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import http_ece  # type: ignore[import-untyped]
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02  # type: ignore[import-untyped]
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.helpers import free_port


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Subscription:
    """A browser's push subscription: its key pair and auth secret."""

    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    auth: bytes = field(default_factory=lambda: os.urandom(16))

    def keys(self) -> dict[str, str]:
        point = self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        return {"p256dh": b64url(point), "auth": b64url(self.auth)}


@dataclass
class Receivers:
    base: str
    vapid_public_key: str = ""  # the server's, to check the VAPID header against
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    received: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    status: dict[str, int] = field(default_factory=dict)
    rejected: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)  # what a receiver found wrong

    def webpush(self, name: str) -> tuple[str, dict[str, str]]:
        """A new web push subscription: its endpoint and keys."""
        self.subscriptions[name] = Subscription()
        return f"{self.base}/webpush/{name}", self.subscriptions[name].keys()

    def unifiedpush(self, name: str) -> str:
        return f"{self.base}/up/{name}"

    @property
    def gateway(self) -> str:
        return f"{self.base}/_matrix/push/v1/notify"

    async def wait_for(self, check: Callable[[], bool], timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Until `check()` holds, or AssertionError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not check():
            assert time.monotonic() < deadline, f"not received in {timeout}s: {dict(self.received)}"
            await asyncio.sleep(0.05)

    def _check_vapid(self, request: Request) -> None:
        auth = request.headers.get("authorization", "")
        scheme, _, rest = auth.partition(" ")
        parts = dict(p.split("=", 1) for p in rest.split(",") if "=" in p)
        if scheme != "vapid" or parts.get("k") != self.vapid_public_key:
            self.problems.append(f"VAPID key: {auth[:80]}")
        elif not Vapid02.verify(auth):
            self.problems.append("VAPID signature does not verify")
        else:
            claims = json.loads(b64url_decode(parts["t"].split(".")[1]))
            origin = f"{request.url.scheme}://{request.url.netloc}"
            if claims.get("aud") != origin or claims.get("exp", 0) < time.time():
                self.problems.append(f"VAPID claims: {claims}")
        if request.headers.get("content-encoding") != "aes128gcm" or not request.headers.get(
                "ttl", "").isdigit():
            self.problems.append("web push headers")

    async def _webpush(self, request: Request) -> Response:
        name = request.path_params["name"]
        self._check_vapid(request)
        sub = self.subscriptions[name]
        try:
            plain = http_ece.decrypt(await request.body(), private_key=sub.key,
                                     auth_secret=sub.auth, version="aes128gcm")
        except Exception as exc:  # noqa: BLE001 -- reported by the test, not a 500
            self.problems.append(f"decrypt: {exc!r}")
            return Response(status_code=400)
        self.received[name].append(json.loads(plain))
        return Response(status_code=self.status.get(name, 201))

    async def _unifiedpush(self, request: Request) -> Response:
        name = request.path_params["name"]
        self.received[name].append(json.loads(await request.body()))
        return Response(status_code=self.status.get(name, 200))

    async def _gateway(self, request: Request) -> JSONResponse:
        notification = json.loads(await request.body())["notification"]
        keys = [d["pushkey"] for d in notification["devices"]]
        for key in keys:
            self.received[key].append(notification)
        return JSONResponse({"rejected": [k for k in keys if k in self.rejected]})

    async def _summary(self, _request: Request) -> JSONResponse:
        """The seqs each name was pushed, for a client in another process (the bench)."""
        return JSONResponse({name: [p.get("seq") for p in got]
                             for name, got in self.received.items()})

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/received", self._summary, methods=["GET"]),
            Route("/webpush/{name}", self._webpush, methods=["POST"]),
            Route("/up/{name}", self._unifiedpush, methods=["POST"]),
            Route("/_matrix/push/v1/notify", self._gateway, methods=["POST"]),
        ])


@asynccontextmanager
async def running_receivers() -> AsyncIterator[Receivers]:
    port = free_port()
    receivers = Receivers(f"http://127.0.0.1:{port}")
    server = uvicorn.Server(uvicorn.Config(receivers.app(), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not task.done(), "the receivers did not start"
            await asyncio.sleep(0.01)
        yield receivers
    finally:
        server.should_exit = True
        await task


def main() -> None:
    """`python -m tests.push.receivers PORT`: the receivers in a process of their own, so their
    work does not share an event loop with a load generator (bench/push_bench.py)."""
    port = int(sys.argv[1])
    receivers = Receivers(f"http://127.0.0.1:{port}")
    uvicorn.run(receivers.app(), host="127.0.0.1", port=port, log_level="warning",
                lifespan="off")


if __name__ == "__main__":
    main()

"""The HTTP API's middleware: one log line and the Prometheus metrics per request, and CORS.

    build_middleware(settings) -> [Middleware, ...]     (create_app registers them)

`RequestObserver` is a plain ASGI middleware (no BaseHTTPMiddleware, which would buffer and
re-wrap every response): it times the request until its last body chunk, labels it by the route
*template* (`/api/threads/{thread_id}/messages`, never the concrete path, so the label set stays
bounded), and reads the `code` of error envelopes for `mqim_errors_total`. The caller's user id
comes from `request.state.user_id`, which `api.auth.authenticate` sets.

CORS (`MQIM_CORS_ORIGINS`) is Starlette's CORSMiddleware, except that a request from an origin
that is not allowed passes through untouched: it gets no CORS headers at all, as if CORS were off.
"""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from actions.metrics import count_error
from config import Settings

logger = logging.getLogger("api.requests")

# The process start, for `uptime_s` of GET /api/admin/stats.
STARTED = time.monotonic()

HTTP_REQUESTS = Counter(
    "mqim_http_requests_total", "HTTP requests answered, by route template and status",
    ["method", "route", "status"])
HTTP_SECONDS = Histogram(
    "mqim_http_request_seconds", "HTTP request latency until the last byte, by route template",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)

UNMATCHED = "<unmatched>"  # a path no route has (404)
PREFLIGHT = "<preflight>"  # a CORS preflight, answered before routing
_CONVERTOR = re.compile(r"\{(\w+):\w+\}")
# Error bodies are small envelopes; a larger one is not ours (and not parsed).
_MAX_ERROR_BODY = 8192
# The methods the API's routes use, and the headers browsers must be allowed to send.
CORS_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
CORS_HEADERS = ("Authorization", "Content-Type")


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return _CONVERTOR.sub(r"{\1}", path) if isinstance(path, str) else UNMATCHED


class RequestObserver:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless the app answers: an exception escaped to Starlette's 500
        error_body = bytearray()

        async def observe(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and status >= 400 and (
                    len(error_body) <= _MAX_ERROR_BODY):
                error_body.extend(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            self._record(scope, status, time.perf_counter() - started, bytes(error_body))

    @staticmethod
    def _record(scope: Scope, status: int, seconds: float, error_body: bytes) -> None:
        method, route = scope["method"], route_template(scope)
        if route == UNMATCHED and method == "OPTIONS" and status < 400:
            route = PREFLIGHT
        HTTP_REQUESTS.labels(method=method, route=route, status=str(status)).inc()
        HTTP_SECONDS.labels(method=method, route=route).observe(seconds)
        fields: dict[str, Any] = {"method": method, "route": route, "status": status,
                                  "ms": round(seconds * 1000, 1)}
        if status >= 400:
            code, error = _error_of(error_body, status)
            count_error("http", code, error)
            fields["code"] = code
        state = scope.get("state")
        user_id = state.get("user_id") if isinstance(state, dict) else None
        fields["user_id"] = user_id
        logger.info("%s %s %d %.1fms user=%s", method, route, status, seconds * 1000,
                    user_id or "-", extra={"fields": fields})


def _error_of(body: bytes, status: int) -> tuple[int, str]:
    """The `code` and `error` of an error envelope (design section 5); else the status."""
    try:
        envelope = json.loads(body)
        return int(envelope["code"]), str(envelope["error"])
    except (ValueError, TypeError, KeyError):
        return status, "http_status"


class ChosenOriginsCors(CORSMiddleware):
    """CORSMiddleware that leaves requests from other origins alone (no CORS headers)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            origin = Headers(scope=scope).get("origin")
            if origin is not None and not self.is_allowed_origin(origin=origin):
                await self.app(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def build_middleware(settings: Settings) -> list[Middleware]:
    """Outermost first: the observer sees every answer, CORS preflights included."""
    middleware = [Middleware(RequestObserver)]
    origins = settings.cors_origin_list()
    if origins:
        middleware.append(Middleware(
            ChosenOriginsCors, allow_origins=origins, allow_methods=CORS_METHODS,
            allow_headers=CORS_HEADERS, expose_headers=("Retry-After", "WWW-Authenticate"),
            max_age=600))
    return middleware

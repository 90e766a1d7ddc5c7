"""Liveness and Prometheus metrics: every metric of this process (docs/operations.md), with the
admin figures refreshed from the database at each scrape."""

from __future__ import annotations

import logging

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from tortoise import connections

from actions.stats import publish_gauges
from api.envelope import error_response, ok
from api.routes.admin import stats_now
from contract.http import Health

logger = logging.getLogger(__name__)


async def health(request: Request) -> JSONResponse:
    try:
        await connections.get("default").execute_query("SELECT 1")
    except Exception as exc:  # noqa: BLE001  # any database failure means "not healthy"
        return error_response(503, 5003, "unavailable", f"database unavailable: {exc}")
    return ok(Health())


async def metrics(request: Request) -> Response:
    try:
        publish_gauges(await stats_now())
    except Exception as exc:  # noqa: BLE001  # the other metrics still matter without the database
        logger.warning("admin figures not refreshed for /metrics: %s", exc)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


routes = [
    Route("/health", health, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
]

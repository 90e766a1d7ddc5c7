"""`mqim api` and `mqim bridge` on a RabbitMQ cluster, until the CLI wires them in
(`python -m mqim.rabbitmq_run api|bridge --management-url URL [--amqp-url URL --worker ID]`).

- api: as `mqim api` with MQIM_BROKER_KIND=hooks, its access changes also applied to live MQTT
  sessions through the management API (mqim/rabbitmq_sync.py);
- bridge: one competing consumer of the uplink quorum queue over AMQP
  (bridge/amqp_source.py), events published over MQTT, the same access wiring.

Settings come from the environment as for every mqim command.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
from contextlib import AsyncExitStack

import uvicorn

from api.app import create_app
from bridge.amqp_source import AmqpUplinks
from bridge.runner import run_bridge
from broker.link.client import service_client
from broker.link.publisher import ServicePublisher
from config import Settings, load_settings
from models.db import open_database
from mqim.directory import ModelDirectory
from mqim.logformat import configure_logging
from mqim.ports import ensure_free
from mqim.rabbitmq_sync import rabbitmq_access


async def run_rabbitmq_api(settings: Settings, management_url: str) -> None:
    ensure_free(settings.http, "HTTP", "--http or MQIM_HTTP")
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(open_database(settings))
        directory = ModelDirectory(settings.jwt_secret, cache=False)
        access = await stack.enter_async_context(
            rabbitmq_access(settings, directory, management_url))
        app = create_app(settings, directory=directory, access=access, own_database=False)
        server = uvicorn.Server(uvicorn.Config(
            app, host=settings.http.host, port=settings.http.port, log_config=None,
            access_log=False,
        ))
        await server.serve()


async def run_rabbitmq_bridge(settings: Settings, management_url: str, amqp_url: str,
                              worker: str) -> None:
    client_id = f"{settings.bridge_username}:bridge-{worker}-{secrets.token_hex(3)}"
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(open_database(settings))
        directory = ModelDirectory(settings.jwt_secret, cache=False)
        access = await stack.enter_async_context(
            rabbitmq_access(settings, directory, management_url))
        publisher = await stack.enter_async_context(
            ServicePublisher(lambda: service_client(settings, client_id)))
        uplinks = await stack.enter_async_context(AmqpUplinks(amqp_url, settings.topic_prefix))
        await run_bridge(settings, access=access, client_id=client_id, publisher=publisher,
                         uplinks=uplinks)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m mqim.rabbitmq_run")
    parser.add_argument("role", choices=["api", "bridge"])
    parser.add_argument("--management-url", required=True)
    parser.add_argument("--amqp-url", default="")
    parser.add_argument("--worker", default="1")
    args = parser.parse_args(argv)
    settings = load_settings(os.environ)
    configure_logging(settings.log_level, settings.log_format)
    if args.role == "api":
        asyncio.run(run_rabbitmq_api(settings, args.management_url))
    elif not args.amqp_url:
        parser.error("the bridge needs --amqp-url")
    else:
        asyncio.run(run_rabbitmq_bridge(settings, args.management_url, args.amqp_url,
                                        args.worker))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

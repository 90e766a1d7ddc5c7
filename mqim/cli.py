"""The `mqim` command line: `mqim serve` runs the whole product; `--help` on every command."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence
from types import FrameType
from typing import Any

from broker.errors import BrokerError
from config import ConfigError, Settings, load_settings, with_generated_secret

logger = logging.getLogger("mqim")

DESCRIPTION = """\
mqim: an instant-messaging backend built around an MQTT broker.

Settings come from MQIM_* environment variables, or from a TOML file named by MQIM_CONFIG
(same keys in lower case without the prefix); flags override both. See README.md."""


def _settings_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("settings (override MQIM_* env vars)")
    group.add_argument("--http", metavar="HOST:PORT", help="HTTP API address [127.0.0.1:8000]")
    group.add_argument("--mqtt", metavar="HOST:PORT",
                       help="embedded broker TCP listener [127.0.0.1:1883]")
    group.add_argument("--mqtt-ws", metavar="HOST:PORT",
                       help="embedded broker WebSocket listener, or 'off' [127.0.0.1:8083]")
    group.add_argument("--broker-url", metavar="URL",
                       help="external broker mqtt://user:pass@host:port [embedded]")
    group.add_argument("--database-url", metavar="URL",
                       help="sqlite://path or postgres://user:pass@host:5432/db "
                            "[sqlite://DATA_DIR/mqim.db]")
    group.add_argument("--data-dir", metavar="DIR", help="data directory [mqim-data]")
    group.add_argument("--log-level", metavar="LEVEL", help="debug, info, warning [info]")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mqim", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser(
        "serve", help="run broker + bridge + HTTP API in one process",
        description="Run the embedded MQTT broker (unless --broker-url is given), the bridge "
                    "and the HTTP API in one process. Ctrl-C stops it.",
    )
    _settings_flags(serve)
    return parser


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    keys = ("http", "mqtt", "mqtt_ws", "broker_url", "database_url", "data_dir", "log_level")
    return {key: getattr(args, key, None) for key in keys}


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # amqtt logs every connection at INFO, and "transitions" every state change.
    for noisy in ("amqtt", "transitions", "uvicorn.error"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


async def _serve(settings: Settings) -> None:
    from mqim.serve import running_server

    # Ctrl-C and SIGTERM stop everything in order (HTTP, bridge, broker, database). uvicorn
    # handles them while it serves and re-raises them after; both land here harmlessly.
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(stop.set)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, on_signal)
    async with running_server(settings) as server:
        logger.info("mqim is ready; press Ctrl-C to stop")
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({server.http_task, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        logger.info("mqim stopping")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        settings = load_settings(os.environ, _overrides(args))
        _configure_logging(settings.log_level)
        settings = with_generated_secret(settings)
        settings.check()
    except (ConfigError, OSError) as exc:
        print(f"mqim: configuration error: {exc}", file=sys.stderr)  # noqa: T201  # CLI output
        return 2
    try:
        asyncio.run(_serve(settings))
    except BrokerError as exc:
        logger.error("%s", exc)  # a clear one-line reason, not a traceback
        return 1
    except KeyboardInterrupt:
        pass
    logger.info("mqim stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())

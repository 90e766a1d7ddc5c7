"""The `mqim` command line: one subcommand per process or admin task, `--help` on each."""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.metadata
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from types import FrameType
from typing import Any

from broker.errors import BrokerError
from config import ConfigError, Settings, load_settings, with_generated_secret
from mqim.logformat import configure_logging

logger = logging.getLogger("mqim")

DESCRIPTION = """\
mqim: an instant-messaging backend built around an MQTT broker.

Settings come from MQIM_* environment variables, or from a TOML file named by MQIM_CONFIG
(same keys in lower case without the prefix); flags override both. See docs/configuration.md."""

_SETTING_FLAGS = ("http", "mqtt", "mqtt_ws", "broker_url", "database_url", "data_dir",
                  "log_level", "log_format", "metrics")


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
    group.add_argument("--log-format", choices=("text", "json"),
                       help="one human line, or one JSON object, per record [text]")
    group.add_argument("--metrics", metavar="HOST:PORT",
                       help="serve Prometheus /metrics here (bridge workers, broker run); "
                            "the HTTP API always serves it on its own port [off]")


def installed_version() -> str:
    """The version of the installed `mqim` distribution (pyproject.toml's, as pip installed it)."""
    try:
        return importlib.metadata.version("mqim")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mqim", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"mqim {installed_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help_text: str, description: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=description)
        _settings_flags(sub)
        return sub

    command("serve", "run broker + bridge + HTTP API in one process",
            "Run the embedded MQTT broker (unless --broker-url names an external one), the "
            "bridge and the HTTP API in one process. Ctrl-C or SIGTERM stops it.")
    command("api", "run the HTTP API alone",
            "Run the HTTP API alone, against an external broker (--broker-url).")
    bridge = command("bridge", "run one bridge worker",
                     "Run one bridge worker. Against an external broker, any number of workers "
                     "share the uplinks through $share/mqim-bridge; give each its own --worker.")
    bridge.add_argument("--worker", default="1", metavar="ID",
                        help="worker id, unique per worker; keep it across restarts so the "
                             "broker redelivers what the worker had not acknowledged [1]")
    command("push", "run the push and webhook worker alone",
            "Run the worker that sends push notifications and delivers webhooks, for "
            "deployments that run 'mqim api' and 'mqim bridge' apart ('mqim serve' runs it "
            "inside). One per database: a second one waits until the first stops.")
    broker = command("broker", "run the embedded broker alone, or prepare Mosquitto",
                     "'mqim broker run' runs the embedded amqtt broker alone (development). "
                     "'mqim broker init' prepares a Mosquitto deployment: builds mqim's plugin "
                     "into DATA_DIR/mosquitto and creates the JWT secret the plugin verifies.")
    broker.add_argument("action", choices=("run", "init"), help="what to do")
    command("migrate", "apply database migrations",
            "Apply the schema migrations that the database has not seen yet (also done, "
            "harmlessly, at every start).")
    acl = command("acl", "inspect or push broker access rules",
                  "'show USER' lists a user's effective broker ACL; 'check USER TOPIC "
                  "read|write|subscribe' "
                  "evaluates one access; 'sync' pushes the whole state to Mosquitto's plugin.")
    acl.add_argument("action", choices=("show", "check", "sync"))
    acl.add_argument("user", nargs="?", help="user id (show, check)")
    acl.add_argument("topic", nargs="?", help="topic (check)")
    acl.add_argument("access", nargs="?", choices=("read", "write", "subscribe"),
                     help="access (check)")
    admin = command("admin", "grant or revoke the admin role",
                    "Make a user an admin (who may ban users and tune ACL rules), or revoke it.")
    admin.add_argument("action", choices=("grant", "revoke"))
    admin.add_argument("user", help="user id")
    users = command("users", "account housekeeping",
                    "'purge' removes for good the accounts deleted longer ago than the restore "
                    "window (MQIM_RESTORE_WINDOW_DAYS): their sessions, memberships and "
                    "friendships go, their messages stay without a sender.")
    users.add_argument("action", choices=("purge",))
    users.add_argument("--dry-run", action="store_true",
                       help="only list the accounts that would be purged")
    return parser


async def _until_stopped(main: Awaitable[Any]) -> Any:
    """Run `main` until it ends or Ctrl-C / SIGTERM arrives, then let it clean up."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(stop.set)

    # uvicorn handles these while it serves and re-raises them after; both land here.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, on_signal)
    work = asyncio.ensure_future(main)
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({work, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if not work.done():
        logger.info("mqim stopping")
        work.cancel()
    try:
        return await work
    except asyncio.CancelledError:
        return None


async def _serve(settings: Settings) -> None:
    from mqim.serve import running_server

    async with running_server(settings) as server:
        # What starting built (database, broker, app) lives as long as the process: out of
        # the collector's way too (see tune_gc). Here, not in running_server: a test process
        # starts many servers and must get their garbage back.
        tune_gc()
        logger.info("mqim is ready; press Ctrl-C to stop")
        await server.http_task


def _runner(args: argparse.Namespace, settings: Settings) -> Callable[[], Awaitable[Any]]:
    from mqim import admin_tasks, processes

    match args.command:
        case "serve":
            return lambda: _serve(settings)
        case "api":
            return lambda: processes.run_api(settings)
        case "bridge":
            return lambda: processes.run_bridge_worker(settings, args.worker)
        case "push":
            return lambda: processes.run_push_worker(settings)
        case "broker":
            if args.action == "init":
                return lambda: admin_tasks.init_mosquitto(settings)
            return lambda: processes.run_embedded_broker(settings)
        case "migrate":
            return lambda: admin_tasks.migrate(settings)
        case "acl":
            return lambda: admin_tasks.acl(settings, args.action, args.user, args.topic,
                                           args.access)
        case "admin":
            return lambda: admin_tasks.set_admin_role(settings, args.user, args.action == "grant")
        case "users":
            return lambda: admin_tasks.purge_users(settings, dry_run=args.dry_run)
    raise AssertionError(args.command)


SWITCH_INTERVAL = 0.001


def tune_gc() -> None:
    """Never walk again what startup built: gc.freeze() moves every object alive now (modules,
    classes, validators, ...) out of the collector's generations, so the full collections that
    the message path's garbage triggers stop walking them. A profile of the 1:1 bench put the
    collector at 11-22% of mqim's CPU before this. (Raising the young threshold from 700 to
    5,000 saved another 7-10% of CPU per message for 25-50 MB more RSS; not taken: memory is a
    figure too, docs/performance.md.) Startup's garbage is collected first: frozen, the
    migrations' schema state and the like (about 20 MB) would never be freed."""
    gc.collect()
    gc.freeze()


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """uvloop's event loop for every mqim process (uvicorn serves on the running loop, so the
    HTTP API gets it too): its sockets, timers and callbacks are handled in C (libuv), which
    takes part of the loop's own CPU per message off the path. The stdlib's loop where uvloop
    is not installed (it does not build on Windows)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        overrides = {key: getattr(args, key, None) for key in _SETTING_FLAGS}
        settings = load_settings(os.environ, overrides)
        configure_logging(settings.log_level, settings.log_format)
        settings = with_generated_secret(settings)
        settings.check()
    except (ConfigError, OSError) as exc:
        print(f"mqim: configuration error: {exc}", file=sys.stderr)  # noqa: T201  # CLI output
        return 2
    run = _runner(args, settings)
    # The event loop shares the GIL with helper threads on the hot path (paho's network thread,
    # aiosqlite's); with the default 5 ms switch interval each hand-off to them can wait that
    # long behind a busy loop. 1 ms keeps those hand-offs short at a small switching cost.
    sys.setswitchinterval(SWITCH_INTERVAL)
    tune_gc()
    try:
        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            result = runner.run(_until_stopped(run()))
    except BrokerError as exc:
        logger.error("%s", exc)  # a clear one-line reason, not a traceback
        return 1
    except KeyboardInterrupt:
        pass
    if args.command in ("serve", "api", "bridge", "push") or (
        args.command == "broker" and args.action == "run"
    ):
        logger.info("mqim stopped")
    return 0 if result is None else int(result)


if __name__ == "__main__":
    sys.exit(main())

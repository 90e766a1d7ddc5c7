"""The Mosquitto single-node mode: build mqim's Mosquitto plugin, render `mosquitto.conf`, run it.

The C sources next to this module (`mqim_auth.h` and its `.c` files) are a Mosquitto 2.0 plugin
(API v5) that does what the embedded broker's plugins do (`broker/embedded/plugins.py`): JWT
logins, the topic ACL of `broker/acl.py`, checked on every delivery. It keeps thread
memberships, ended sessions, bans and extra rules in memory; `broker/mosquitto/control.py`
sends them. This module compiles the plugin with the system C compiler into one library,
rewrites the repository's `mosquitto.conf` for a concrete deployment (ports, paths, plugin
options), and can run a Mosquitto process for tests and benchmarks. It does not install
Mosquitto or supervise it in production (use the distribution's service for that).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from pathlib import Path

from broker.errors import BrokerError
from contract.topics import is_topic_safe

PLUGIN_DIR = Path(__file__).parent
PLUGIN_HEADER = PLUGIN_DIR / "mqim_auth.h"
PLUGIN_NAME = "mqim_auth.so"

# Debian/Ubuntu packages that provide what the build needs.
BUILD_PACKAGES = ("gcc", "mosquitto-dev", "libmosquitto-dev", "libcjson-dev", "libssl-dev")
_HEADER_PACKAGES = {
    "mosquitto_broker.h": "mosquitto-dev",
    "mosquitto_plugin.h": "mosquitto-dev",
    "mosquitto.h": "libmosquitto-dev",
    "cjson/cJSON.h": "libcjson-dev",
    "openssl/": "libssl-dev",
}
_LIBRARY_PACKAGES = {"cjson": "libcjson-dev", "crypto": "libssl-dev"}
_CFLAGS = ("-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror")
_LIBS = ("-lcjson", "-lcrypto")
# Where Debian puts the broker; /usr/sbin is often missing from a non-root PATH.
_SBIN_DIRS = "/usr/sbin:/usr/local/sbin:/sbin"


class PluginBuildError(BrokerError):
    """The plugin cannot be compiled; the message names the packages to install."""


class MosquittoStartError(BrokerError):
    """Mosquitto is not installed, or exited / did not listen after being started."""


def plugin_sources() -> list[Path]:
    """The plugin's C files, in a stable order: every `*.c` beside its header."""
    return sorted(PLUGIN_DIR.glob("*.c"))


def build_plugin(out_dir: Path) -> Path:
    """Compile the plugin into `out_dir/mqim_auth.so` unless it is newer than every source
    file and the header.

    All `.c` files go into one library in one compiler run, with the same flags. The library is
    written under a temporary name and renamed, so concurrent builds and a broker loading the
    old file never see a half-written one.
    """
    target = out_dir / PLUGIN_NAME
    sources = plugin_sources()
    newest = max(path.stat().st_mtime for path in [*sources, PLUGIN_HEADER])
    if target.exists() and target.stat().st_mtime >= newest:
        return target
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise PluginBuildError(
            "no C compiler (cc) found to build the Mosquitto plugin; install: "
            f"sudo apt-get install -y {' '.join(BUILD_PACKAGES)}"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".mqim_auth-", suffix=".so", dir=out_dir)
    os.close(fd)
    tmp = Path(tmp_name)
    command = [compiler, *_CFLAGS, "-o", str(tmp), *map(str, sources), *_LIBS]
    try:
        result = subprocess.run(  # noqa: S603  # fixed argv, our own source files, no shell
            command, capture_output=True, text=True, check=False, timeout=120
        )
        if result.returncode != 0:
            raise PluginBuildError(explain_build_failure(result.stderr))
        tmp.chmod(0o755)
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def explain_build_failure(stderr: str) -> str:
    """The compiler's complaint, led by the Debian packages that would fix it."""
    missing = sorted(
        {pkg for header, pkg in _HEADER_PACKAGES.items() if re.search(
            rf"fatal error: {re.escape(header)}[^:]*: No such file", stderr)}
        | {pkg for lib, pkg in _LIBRARY_PACKAGES.items() if f"cannot find -l{lib}" in stderr}
    )
    if missing:
        return (
            f"cannot build the Mosquitto plugin: missing {', '.join(missing)}; install: "
            f"sudo apt-get install -y {' '.join(BUILD_PACKAGES)}\n{stderr.strip()}"
        )
    return f"cannot build the Mosquitto plugin in {PLUGIN_DIR}:\n{stderr.strip()}"


def _directive(line: str) -> str:
    stripped = line.strip()
    if not stripped or stripped.startswith("#"):
        return ""
    return stripped.split(None, 1)[0]


def _check_value(name: str, value: str) -> str:
    if not value or any(c in value for c in "\r\n\0"):
        raise ValueError(f"{name} {value!r} cannot be written into mosquitto.conf")
    return value


def render_mosquitto_conf(
    template: str,
    *,
    tcp_port: int,
    ws_port: int,
    data_dir: Path,
    plugin_path: Path,
    jwt_secret_file: Path,
    topic_prefix: str,
    service_users: Sequence[str],
    bind_host: str = "127.0.0.1",
    user: str | None = None,
) -> str:
    """The repository's `mosquitto.conf` (`template`) for one concrete deployment or test.

    Rewrites the TCP and the WebSockets listener (the one followed by `protocol websockets`),
    `persistence_location`, `plugin` and its `plugin_opt_*` lines; paths become absolute, since
    Mosquitto resolves them against its working directory. Every other line is kept. `user`
    sets the account Mosquitto switches to when started as root (its default is `mosquitto`,
    which must then be able to read the secret file and write `data_dir`).
    """
    if any(not is_topic_safe(name) or "," in name for name in service_users) or not service_users:
        raise ValueError(f"invalid service users {list(service_users)!r}")
    if not topic_prefix or topic_prefix.startswith("$") or any(c in topic_prefix for c in "+# \0"):
        raise ValueError(f"invalid topic prefix {topic_prefix!r}")
    values = {
        "persistence_location": f"{data_dir.absolute()}/",
        "plugin": str(plugin_path.absolute()),
        "plugin_opt_jwt_secret_file": str(jwt_secret_file.absolute()),
        "plugin_opt_topic_prefix": topic_prefix,
        "plugin_opt_service_users": ",".join(service_users),
    }
    if user is not None:
        values["user"] = user
    for name, value in values.items():
        _check_value(name, value)
    _check_value("bind_host", bind_host)

    lines = template.splitlines()
    listeners = [i for i, line in enumerate(lines) if _directive(line) == "listener"]
    websockets = set()
    for n, start in enumerate(listeners):
        end = listeners[n + 1] if n + 1 < len(listeners) else len(lines)
        if any(line.split() == ["protocol", "websockets"] for line in lines[start + 1:end]):
            websockets.add(start)
    if len(listeners) != 2 or len(websockets) != 1:
        raise ValueError("the template needs one TCP listener and one `protocol websockets` one")

    out, seen = [], set()
    for i, line in enumerate(lines):
        name = _directive(line)
        if i in listeners:
            line = f"listener {ws_port if i in websockets else tcp_port} {bind_host}"
        elif name in values:
            line = f"{name} {values[name]}"
            seen.add(name)
        out.append(line)
    if "user" in values and "user" not in seen:
        out.append(f"user {values['user']}")
        seen.add("user")
    missing = sorted(set(values) - seen)
    if missing:
        raise ValueError(f"the template has no {', '.join(missing)} line")
    return "\n".join(out) + "\n"


def mosquitto_binary() -> Path:
    """The installed `mosquitto` broker (Debian package `mosquitto`)."""
    found = shutil.which("mosquitto") or shutil.which("mosquitto", path=_SBIN_DIRS)
    if found is None:
        raise MosquittoStartError(
            "mosquitto is not installed; install: sudo apt-get install -y mosquitto"
        )
    return Path(found)


def _port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


@asynccontextmanager
async def running_mosquitto(
    conf_path: Path, *, host: str, port: int, log_path: Path, start_timeout: float = 15.0
) -> AsyncIterator[asyncio.subprocess.Process]:
    """Run `mosquitto -c conf_path` until the context exits (SIGTERM, then SIGKILL).

    Waits until `host:port` accepts connections, polling the socket; the broker's output goes
    to `log_path`. Raises MosquittoStartError, with the log's tail, if it exits or never listens.
    """
    binary = mosquitto_binary()
    if _port_open(host, port):
        raise MosquittoStartError(f"{host}:{port} is already in use")
    log = await asyncio.to_thread(log_path.open, "ab")
    with log:
        process = await asyncio.create_subprocess_exec(
            str(binary), "-c", str(conf_path), stdout=log, stderr=subprocess.STDOUT
        )
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + start_timeout
        while not await asyncio.to_thread(_port_open, host, port):
            if process.returncode is not None or loop.time() > deadline:
                tail = (await asyncio.to_thread(log_path.read_text, errors="replace"))[-3000:]
                state = (
                    f"exited with {process.returncode}" if process.returncode is not None
                    else f"did not listen on {host}:{port} within {start_timeout} s"
                )
                raise MosquittoStartError(f"mosquitto {state}:\n{tail}")
            await asyncio.sleep(0.05)
        yield process
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                async with asyncio.timeout(10):
                    await process.wait()
            except TimeoutError:
                with suppress(ProcessLookupError):
                    process.kill()
                await process.wait()

"""The `mqim` command as a user runs it: help, a clear message when a port is taken."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from pathlib import Path

from tests.helpers import free_port


def run_mqim(*args: str, cwd: Path, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603  # our own CLI with fixed arguments
        [sys.executable, "-m", "mqim", *args], cwd=cwd, capture_output=True, text=True,
        timeout=timeout, check=False,
    )


def test_help_describes_the_commands(tmp_path: Path) -> None:
    top = run_mqim("--help", cwd=tmp_path)
    assert top.returncode == 0
    assert "serve" in top.stdout
    serve = run_mqim("serve", "--help", cwd=tmp_path)
    assert serve.returncode == 0
    for flag in ("--http", "--mqtt", "--mqtt-ws", "--broker-url", "--database-url", "--data-dir"):
        assert flag in serve.stdout


def test_taken_port_is_reported_clearly(tmp_path: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        result = run_mqim("serve", "--http", f"127.0.0.1:{taken}", "--mqtt",
                          f"127.0.0.1:{free_port()}", "--mqtt-ws", "off", cwd=tmp_path)
    assert result.returncode == 1
    assert f"cannot listen for HTTP on 127.0.0.1:{taken}: the port is in use" in result.stderr
    assert "--http or MQIM_HTTP" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_setting_is_reported_clearly(tmp_path: Path) -> None:
    result = run_mqim("serve", "--http", "nowhere", cwd=tmp_path)
    assert result.returncode == 2
    assert "configuration error: MQIM_HTTP must look like host:port" in result.stderr


def test_sigterm_stops_the_server_cleanly(tmp_path: Path) -> None:
    import signal
    import time

    http = free_port()
    process = subprocess.Popen(  # noqa: S603  # our own CLI with fixed arguments
        [sys.executable, "-m", "mqim", "serve", "--http", f"127.0.0.1:{http}", "--mqtt",
         f"127.0.0.1:{free_port()}", "--mqtt-ws", "off"],
        cwd=tmp_path, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", http), timeout=1):
                    break
            except OSError:
                time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    assert "HTTP API listening on" in stderr
    assert "mqim stopped" in stderr
    assert (tmp_path / "mqim-data" / "mqim.db").exists()


async def test_acl_show_and_check_explain_a_users_access(tmp_path: Path) -> None:
    import httpx

    from tests.helpers import create_group, make_settings, register
    from tests.stacks import serve_process

    settings = make_settings(tmp_path)
    async with serve_process(settings, tmp_path / "mqim.log") as stack, httpx.AsyncClient(
        base_url=f"http://{settings.http}") as http:
        alice, bob = await register(http), await register(http)
        thread_id = await create_group(http, alice)
        shown = await stack.cli("acl", "show", alice.user_id)
        assert f"read      im/t/{thread_id}" in shown
        assert f"write     im/up/{alice.user_id}" in shown
        assert "allow" in await stack.cli("acl", "check", alice.user_id, f"im/t/{thread_id}",
                                          "read")
        denied = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mqim", "acl", "check", bob.user_id, f"im/t/{thread_id}",
            "subscribe", env=stack.env(), stdout=asyncio.subprocess.PIPE)
        out, _ = await denied.communicate()
        assert denied.returncode == 1
        assert out.decode().strip() == f"deny: {bob.user_id} subscribe im/t/{thread_id}"


def test_broker_init_builds_the_plugin(tmp_path: Path) -> None:
    result = run_mqim("broker", "init", "--data-dir", str(tmp_path / "data"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "data" / "mosquitto" / "mqim_auth.so").exists()
    assert (tmp_path / "data" / "jwt-secret").exists()
    assert "mosquitto -c mosquitto.conf" in result.stdout
    assert "MQIM_BROKER_URL=mqtt://mqim-bridge:" in result.stdout

"""The SDK's promise, end to end: docs/sdk.md's 20-line script (sdk/examples/send_1000.py, the
page's copy checked equal) sends 1,000 messages while Mosquitto is restarted under it. Every
message is stored once with gapless seqs (read from the database), and the receiving client saw
each exactly once. Access tokens live 5 s here, so reconnects and catch-ups need refreshes."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from contextlib import AsyncExitStack
from pathlib import Path

import asyncpg
import httpx

from tests.docs.markdown import DOCS, REPO_ROOT, code_blocks, read
from tests.helpers import make_settings
from tests.stacks import external_broker_settings, mosquitto_for, postgres_database, serve_process

SCRIPT = REPO_ROOT / "sdk" / "examples" / "send_1000.py"
RESTART_AFTER = "sent 300,"
SCRIPT_SECONDS = 180


def test_the_docs_show_the_script_as_it_is() -> None:
    blocks = [b.text for b in code_blocks(read(DOCS / "sdk.md")) if b.language == "python"]
    script = SCRIPT.read_text(encoding="utf-8")
    assert script in blocks, "docs/sdk.md must show sdk/examples/send_1000.py verbatim"
    lines = [line for line in script.splitlines() if line.strip() and
             not line.lstrip().startswith(("#", '"""'))]
    assert len(lines) <= 30, f"the script grew to {len(lines)} lines"


async def test_1000_messages_across_a_mosquitto_restart(tmp_path: Path) -> None:
    base = make_settings(tmp_path, access_token_ttl=5)
    async with AsyncExitStack() as outer:
        db_url = await outer.enter_async_context(postgres_database())
        broker = AsyncExitStack()
        outer.push_async_callback(lambda: broker.aclose())
        ports = await broker.enter_async_context(mosquitto_for(base, tmp_path))
        settings = external_broker_settings(base, *ports, database_url=db_url)
        await outer.enter_async_context(serve_process(settings, tmp_path / "mqim.log"))
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "sdk"),
               "MQIM_API": f"http://{settings.http}", "MQIM_BROKER": f"mqtt://{settings.mqtt}"}
        script = await asyncio.create_subprocess_exec(
            sys.executable, str(SCRIPT), env=env, cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        assert script.stdout is not None
        out: list[str] = []
        restarted = False
        async with asyncio.timeout(SCRIPT_SECONDS):
            while line := (await script.stdout.readline()).decode():
                out.append(line)
                if line.startswith(RESTART_AFTER):  # Mosquitto goes down and comes back
                    await broker.aclose()
                    broker = AsyncExitStack()
                    await broker.enter_async_context(mosquitto_for(base, tmp_path, ports))
                    restarted = True
            _, err = await script.communicate()
        assert script.returncode == 0, "".join(out) + err.decode()[-4000:]
        assert restarted, "".join(out)
        summary = re.fullmatch(r"thread (t[0-9a-f]+): bob received 1000, all once and in order: "
                               r"True, (\d+) fetched after reconnecting\n", out[-1])
        assert summary, "".join(out)
        thread_id = summary.group(1)
        async with httpx.AsyncClient(base_url=f"http://{settings.http}") as http:
            assert (await http.get("/health")).status_code == 200
        connection = await asyncpg.connect(db_url)
        try:
            rows = await connection.fetch(
                "SELECT seq, body FROM message WHERE thread_id = $1 ORDER BY seq", thread_id)
        finally:
            await connection.close()
    assert [row["seq"] for row in rows] == list(range(1, 1002))  # log:subscribe, then 1,000
    assert [row["body"] for row in rows[1:]] == [f"message {i}" for i in range(1000)]

"""After a restart, history shows every reaction, edit, unsend and vote as it was, and an unsent
message's text and file stay gone (docs/messages.md). Both stacks: the embedded broker on SQLite,
Mosquitto on PostgreSQL; the server is a real `mqim serve` process, stopped and started again."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from config import Settings
from tests.helpers import Account, create_group, make_settings, register
from tests.stacks import external_broker_settings, mosquitto_for, postgres_database, serve_process

PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x02\x00\x00\x00\x03\x08\x02\x00\x00\x00"
       b"\x00\x00\x00\x00" + b"\x00" * 64)


async def _ok(response: httpx.Response) -> Any:
    assert response.status_code in (200, 201), response.text
    return response.json()["data"]


async def _build_history(http: httpx.AsyncClient, alice: Account, bob: Account, thread_id: str,
                         ) -> tuple[str, str]:
    """A thread with a reaction pair, an edit, an unsent message with a file and a poll vote;
    returns (the unsent message's id, its upload's id)."""
    base = f"/api/threads/{thread_id}"
    first = await _ok(await http.post(f"{base}/messages", headers=alice.auth,
                                      json={"client_msg_id": "r1", "body": "first draft"}))
    upload = await _ok(await http.post("/api/uploads", headers=bob.auth,
                                       files={"file": ("dot.png", PNG, "image/png")}))
    doomed = await _ok(await http.post(f"{base}/messages", headers=bob.auth, json={
        "client_msg_id": "r2", "type": "image", "body": "secret caption",
        "content": {"upload_id": upload["upload_id"]}, "reply_to": first["message_id"]}))
    for who, emoji in ((bob, "👍"), (alice, "👍"), (bob, "🎉")):
        await _ok(await http.post(f"{base}/messages/{first['message_id']}/reactions",
                                  headers=who.auth, json={"emoji": emoji}))
    await _ok(await http.patch(f"{base}/messages/{first['message_id']}", headers=alice.auth,
                               json={"body": "final text"}))
    await _ok(await http.delete(f"{base}/messages/{doomed['message_id']}", headers=bob.auth))
    poll = await _ok(await http.post(f"{base}/polls", headers=alice.auth,
                                     json={"question": "Lunch?", "options": ["yes", "no"]}))
    await _ok(await http.post(f"{base}/polls/{poll['poll_id']}/votes", headers=bob.auth,
                              json={"option_ids": [0]}))
    return doomed["message_id"], upload["upload_id"]


@pytest.mark.parametrize("mode", ["embedded", "mosquitto"])
async def test_rich_history_survives_a_restart(tmp_path: Path, mode: str) -> None:
    base = make_settings(tmp_path)
    async with AsyncExitStack() as outer:
        db_url = await outer.enter_async_context(postgres_database()) if mode != "embedded" else ""

        async def start(run: AsyncExitStack) -> httpx.AsyncClient:
            settings: Settings = base
            if mode != "embedded":
                port, ws = await run.enter_async_context(mosquitto_for(base, tmp_path))
                settings = external_broker_settings(base, port, ws, database_url=db_url)
            await run.enter_async_context(serve_process(settings, tmp_path / "mqim.log"))
            return await run.enter_async_context(
                httpx.AsyncClient(base_url=f"http://{settings.http}"))

        async with AsyncExitStack() as run:
            http = await start(run)
            alice, bob = await register(http), await register(http)
            thread_id = await create_group(http, alice, bob)
            doomed, upload_id = await _build_history(http, alice, bob, thread_id)
            before = await _ok(await http.get(f"/api/threads/{thread_id}/messages",
                                              headers=alice.auth))

        async with AsyncExitStack() as run:
            http = await start(run)
            after = await _ok(await http.get(f"/api/threads/{thread_id}/messages",
                                             headers=alice.auth))
            assert after == before
            seqs = [entry["seq"] for entry in after]
            assert seqs == list(range(1, len(seqs) + 1))  # gapless, actions included
            messages = {e["message_id"]: e for e in after if e["type"].startswith("message")
                        and "msg_type" in e}
            first = next(e for e in messages.values() if e.get("client_msg_id") == "r1")
            assert (first["body"], first["reactions"]) == (
                "final text", {"👍": [bob.user_id, alice.user_id], "🎉": [bob.user_id]})
            assert first["edited_at"] is not None
            assert first["reply_count"] == 0  # its one reply was unsent
            gone = messages[doomed]
            assert gone["deleted"] is True
            assert (gone["body"], gone["content"], gone["attachments"]) == (None, None, [])
            poll = next(e for e in messages.values() if e["msg_type"] == "poll")
            assert [o["votes"] for o in poll["content"]["options"]] == [1, 0]
            # The unsent message's file is gone for everyone, its uploader included.
            for who in (alice, bob):
                fetched = await http.get(f"/api/uploads/{upload_id}", headers=who.auth)
                assert fetched.status_code == 404
            assert not list((tmp_path / "uploads").rglob(upload_id + "*"))

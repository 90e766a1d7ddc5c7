"""Messages that carry uploads, over real HTTP and MQTT on both stacks (docs/messages.md):
`content.upload_id` and `attachments[].upload_id` completed from the upload; who may then fetch
the file (the uploader, members who can read the message, nobody else: not a member who joined
after it under non-shared history, nor one who had left before it); someone else's upload
refused (4007); the multipart send (an image gets its dimensions; a refused or oversized send
keeps nothing); `PUT /api/me/avatar` and `PUT /api/threads/{id}/image`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from config import Settings
from tests.api.test_accounts import assert_error
from tests.api.test_content import entry, send
from tests.api.test_uploads import BOUNDARY, png, raw_post, stored_files, upload, upload_rows
from tests.helpers import (
    Account,
    create_group,
    mqtt_session,
    next_event,
    register,
    unique_id,
)
from tests.stacks import Stack

PDF = b"%PDF-1.7\nnot much of a document\n"


async def uploaded(http: httpx.AsyncClient, who: Account, data: bytes, name: str = "a.png",
                   ) -> dict[str, Any]:
    answer = await upload(http, who, data, name=name)
    assert answer.status_code == 201, answer.text
    return dict(answer.json()["data"])


async def can_fetch(http: httpx.AsyncClient, who: Account, url: str) -> bool:
    got = await http.get(url, headers=who.auth)
    if got.status_code == 404:
        assert got.json()["code"] == 4007
        return False
    assert got.status_code == 200, got.text
    return True


async def leave(http: httpx.AsyncClient, who: Account, thread_id: str) -> None:
    left = await http.delete(f"/api/threads/{thread_id}/members/{who.user_id}", headers=who.auth)
    assert left.status_code == 200, left.text


async def test_referenced_uploads_are_filled_in_and_readable_by_readers(
        http: httpx.AsyncClient) -> None:
    alice, bob, carol, early, late, later = [await register(http) for _ in range(6)]
    thread_id = await create_group(http, alice, bob, early, late)
    await leave(http, early, thread_id)  # gone before the message
    image = await uploaded(http, alice, png(37, 23))
    doc = await uploaded(http, alice, PDF, name="report.pdf")
    sent = await send(http, alice, thread_id, type="image",
                      content={"upload_id": image["upload_id"]},
                      attachments=[{"upload_id": doc["upload_id"]}, {"note": "kept as is"}])
    assert sent.status_code == 201, sent.text
    stored = await entry(http, bob, thread_id, sent.json()["data"]["seq"])
    assert stored["content"] == {"upload_id": image["upload_id"], "url": image["url"],
                                 "size": image["size"], "width": 37, "height": 23}
    assert stored["attachments"] == [
        {"upload_id": doc["upload_id"], "url": doc["url"], "size": len(PDF),
         "name": "report.pdf", "content_type": "application/pdf"}, {"note": "kept as is"}]
    # Given fields win over the upload's.
    own = await send(http, alice, thread_id, type=5, body="see",
                     content={"upload_id": doc["upload_id"], "name": "renamed.pdf"})
    own_entry = await entry(http, bob, thread_id, own.json()["data"]["seq"])
    assert own_entry["content"]["name"] == "renamed.pdf"
    await leave(http, late, thread_id)  # gone after the message: still reads it
    added = await http.post(f"/api/threads/{thread_id}/members", headers=alice.auth,
                            json={"user_ids": [later.user_id]})
    assert added.status_code == 200, added.text
    for url in (image["url"], doc["url"]):
        assert await can_fetch(http, alice, url)
        assert await can_fetch(http, bob, url)
        assert await can_fetch(http, late, url)
        assert not await can_fetch(http, carol, url)  # never a member
        assert not await can_fetch(http, early, url)  # left before it
        assert not await can_fetch(http, later, url)  # joined after it, history not shared
    shared = await http.patch(f"/api/threads/{thread_id}", headers=alice.auth,
                              json={"settings": {"history_visibility": "shared"}})
    assert shared.status_code == 200, shared.text
    assert await can_fetch(http, later, image["url"])


async def test_someone_elses_upload_is_refused(server: Stack, http: httpx.AsyncClient) -> None:
    alice, bob = await register(http), await register(http)
    thread_id = await create_group(http, alice, bob)
    secret = await uploaded(http, alice, png(5, 5))
    before = await http.get(f"/api/threads/{thread_id}", headers=bob.auth)
    for fields in ({"type": "image", "content": {"upload_id": secret["upload_id"]}},
                   {"body": "x", "attachments": [{"upload_id": secret["upload_id"]}]},
                   {"type": "image", "content": {"upload_id": "fnosuchupload"}}):
        refused = await send(http, bob, thread_id, **fields)
        assert_error(refused, 404, 4007, "upload_not_found")
    bad = await send(http, bob, thread_id, body="x", attachments=[{"upload_id": 12}])
    assert_error(bad, 400, 4003, "content_invalid")
    after = await http.get(f"/api/threads/{thread_id}", headers=bob.auth)
    assert after.json()["data"]["max_seq"] == before.json()["data"]["max_seq"]
    assert not await can_fetch(http, bob, secret["url"])

    prefix = server.settings.topic_prefix
    async with mqtt_session(server.settings, bob) as client:
        await client.subscribe(f"{prefix}/u/{bob.user_id}", qos=1)
        await client.publish(f"{prefix}/up/{bob.user_id}", json.dumps({
            "op": "send", "req": "steal", "thread_id": thread_id, "client_msg_id": unique_id(),
            "type": "file", "content": {"upload_id": secret["upload_id"]}}), qos=1)
        answer = await next_event(client, lambda _t, e: e.get("req") == "steal")
        assert (answer["type"], answer["code"]) == ("error", 4007)
        # Once alice shows it to bob, he may read it, and so pass it on.
        shown = await send(http, alice, thread_id, type="image",
                           content={"upload_id": secret["upload_id"]})
        assert shown.status_code == 201, shown.text
        await client.publish(f"{prefix}/up/{bob.user_id}", json.dumps({
            "op": "send", "req": "share", "thread_id": thread_id, "client_msg_id": unique_id(),
            "type": "image", "content": {"upload_id": secret["upload_id"]}}), qos=1)
        answer = await next_event(client, lambda _t, e: e.get("req") == "share")
        assert answer["type"] == "ack", answer
    stored = await entry(http, alice, thread_id, answer["data"]["seq"])
    assert stored["content"]["width"] == 5


async def test_multipart_send(server: Stack, http: httpx.AsyncClient) -> None:
    alice, bob, carol = await register(http), await register(http), await register(http)
    thread_id = await create_group(http, alice, bob)
    url = f"/api/threads/{thread_id}/messages"
    msg_id = unique_id("m")
    sent = await http.post(url, headers=alice.auth,
                           data={"body": "our cat", "client_msg_id": msg_id},
                           files={"file": ("cat.png", png(40, 30), "image/png")})
    assert sent.status_code == 201, sent.text
    stored = await entry(http, bob, thread_id, sent.json()["data"]["seq"])
    assert (stored["msg_type"], stored["body"], stored["client_msg_id"]) == (
        "image", "our cat", msg_id)
    content = stored["content"]
    assert (content["width"], content["height"]) == (40, 30)
    assert content["url"] == f"/api/uploads/{content['upload_id']}"
    assert await can_fetch(http, bob, content["url"])
    assert not await can_fetch(http, carol, content["url"])

    rows, files = await upload_rows(server.settings), stored_files(server.settings)
    again = await http.post(url, headers=alice.auth, data={"client_msg_id": msg_id},
                            files={"file": ("cat.png", png(40, 30), "image/png")})
    assert again.status_code == 200, again.text
    assert again.json()["data"]["duplicate"] is True
    # Refused sends keep nothing: a non-member, an image type for a PDF, a bad type.
    for who, fields in ((carol, {}), (alice, {"type": "image"}), (alice, {"type": "location"}),
                        (alice, {"type": "2"}), (alice, {"reply_to": "nosuchmessage"})):
        refused = await http.post(url, headers=who.auth, data=fields,
                                  files={"file": ("r.pdf", PDF, "application/pdf")})
        assert refused.status_code in (400, 403, 404), refused.text
    assert await upload_rows(server.settings) == rows
    assert stored_files(server.settings) == files

    doc = await http.post(url, headers=alice.auth, files={"file": ("r.pdf", PDF, "text/plain")})
    assert doc.status_code == 201, doc.text
    as_file = await entry(http, bob, thread_id, doc.json()["data"]["seq"])
    assert as_file["msg_type"] == "file"
    assert (as_file["content"]["name"], as_file["content"]["size"]) == ("r.pdf", len(PDF))
    voice = await http.post(url, headers=alice.auth, data={"type": "voice"},
                            files={"file": ("v.ogg", b"OggS" + b"\0" * 40, "audio/ogg")})
    assert voice.status_code == 201, voice.text
    assert (await entry(http, bob, thread_id, voice.json()["data"]["seq"]))["msg_type"] == "audio"
    # JSON sends are unchanged.
    plain = await send(http, alice, thread_id, body="plain")
    assert plain.status_code == 201, plain.text


async def raw_send(settings: Settings, path: str, headers: dict[str, str], first: bytes,
                   ) -> tuple[int, dict[str, Any]]:
    """POST `first` and then nothing more (the declared length is larger): (status, body)."""

    async def once() -> AsyncIterator[bytes]:
        yield first

    return await raw_post(settings, headers, once(), path)


async def test_multipart_send_over_the_limit_keeps_nothing(
        server: Stack, http: httpx.AsyncClient) -> None:
    alice = await register(http)
    thread_id = await create_group(http, alice)
    rows, files = await upload_rows(server.settings), stored_files(server.settings)
    before = await http.get(f"/api/threads/{thread_id}", headers=alice.auth)
    part = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"big.bin\"\r\n\r\n").encode() + b"x" * 1024
    status, body = await raw_send(server.settings, f"/api/threads/{thread_id}/messages", {
        **alice.auth, "Content-Length": str(server.settings.max_upload_bytes + 1024 * 1024),
        "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}, part)
    assert (status, body["code"], body["error"]) == (413, 4008, "upload_too_large")

    async def endless() -> Any:  # chunked, so only the streaming cap can stop it
        yield part
        block = b"y" * (256 * 1024)
        for _ in range(server.settings.max_upload_bytes // len(block) + 8):
            yield block

    try:
        cut = await http.post(f"/api/threads/{thread_id}/messages", content=endless(), headers={
            **alice.auth, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
    except httpx.TransportError:
        pass  # the server answered and closed while we were still sending
    else:
        assert (cut.status_code, cut.json()["code"]) == (413, 4008)
    assert await upload_rows(server.settings) == rows
    assert stored_files(server.settings) == files
    after = await http.get(f"/api/threads/{thread_id}", headers=alice.auth)
    assert after.json()["data"]["max_seq"] == before.json()["data"]["max_seq"]


async def test_avatar_and_thread_image(server: Stack, http: httpx.AsyncClient) -> None:
    alice, bob, carol = await register(http), await register(http), await register(http)
    set_avatar = await http.put("/api/me/avatar", headers=alice.auth,
                                files={"file": ("me.jpg", png(8, 8), "image/jpeg")})
    assert set_avatar.status_code == 200, set_avatar.text
    avatar = set_avatar.json()["data"]["avatar_url"]
    assert avatar.startswith("/api/uploads/f")  # a path on this server: right behind any proxy
    path = avatar
    profile = await http.get(f"/api/users/{alice.user_id}", headers=carol.auth)
    assert profile.json()["data"]["avatar_url"] == avatar
    assert await can_fetch(http, carol, path)  # anyone signed in sees an avatar
    assert (await http.get(path)).status_code == 401

    thread_id = await create_group(http, alice, bob)
    rows, files = await upload_rows(server.settings), stored_files(server.settings)
    not_image = await http.put("/api/me/avatar", headers=alice.auth,
                               files={"file": ("x.png", PDF, "image/png")})
    assert_error(not_image, 400, 4003, "content_invalid")
    not_admin = await http.put(f"/api/threads/{thread_id}/image", headers=bob.auth,
                               files={"file": ("g.png", png(9, 9), "image/png")})
    assert_error(not_admin, 403, 3007, "not_admin")
    outsider = await http.put(f"/api/threads/{thread_id}/image", headers=carol.auth,
                              files={"file": ("g.png", png(9, 9), "image/png")})
    assert outsider.status_code in (403, 404), outsider.text
    assert await upload_rows(server.settings) == rows
    assert stored_files(server.settings) == files

    prefix = server.settings.topic_prefix
    async with mqtt_session(server.settings, bob) as client:
        await client.subscribe(f"{prefix}/t/{thread_id}", qos=1)
        updated = await http.put(f"/api/threads/{thread_id}/image", headers=alice.auth,
                                 files={"file": ("g.png", png(9, 9), "image/png")})
        assert updated.status_code == 200, updated.text
        image = updated.json()["data"]["image_url"]
        [seq] = updated.json()["data"]["seqs"]
        event = await next_event(client, lambda _t, e: e.get("seq") == seq)
        assert event["type"] == "event"
    image_path = image[image.index("/api/uploads/"):]
    assert await can_fetch(http, bob, image_path)  # a member
    assert not await can_fetch(http, carol, image_path)  # not one
    shown = await http.get(f"/api/threads/{thread_id}", headers=bob.auth)
    assert shown.json()["data"]["image_url"] == image

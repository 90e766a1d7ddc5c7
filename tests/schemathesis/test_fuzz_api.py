"""schemathesis against a live `mqim serve` (embedded stack), one test per operation of
/openapi.json: no answer may be a 5xx, and every answer must match the document.

Each operation runs three bounded batches of generated requests: valid ones (positive), invalid
ones (negative: wrong types, missing fields, out-of-range numbers), and valid ones aimed at real
objects (a group the caller owns, a friend, a friend group), so that the requests get past "not
found" into the code that does the work. Each operation gets a fresh user (an admin for the admin
routes), so that one operation deleting its account or logging out does not blind the others.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from api.openapi import openapi_path
from api.openapi_routes import OPERATIONS
from tests.helpers import Account, register, unique_id
from tests.stacks import Stack, running_stack

EXAMPLES = 8  # per batch; three batches per operation
CHECKS = [not_a_server_error, response_schema_conformance]
KEYS = sorted(OPERATIONS, key=lambda key: (key[1], key[0]))


@dataclass(frozen=True)
class Target:
    stack: Stack
    base_url: str
    document: dict[str, Any]
    admin: Account


@pytest.fixture(scope="module")
async def target(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Target]:
    """A stack of its own: the fuzzing adds ACL rules and bans that other tests must not see."""
    async with running_stack("embedded", tmp_path_factory.mktemp("schemathesis")) as stack:
        base_url = f"http://{stack.settings.http}"
        async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
            document = (await http.get("/openapi.json")).json()
            admin = await register(http)
        await stack.cli("admin", "grant", admin.user_id)
        yield Target(stack, base_url, document, admin)


def _real_objects(http: httpx.Client, caller: Account, other: Account) -> dict[str, Any]:
    """Path parameters naming things the caller may act on."""
    auth = caller.auth
    thread = http.post("/api/threads", headers=auth, json={
        "type": "group", "name": "fuzz", "user_ids": [other.user_id]}).json()["data"]
    request = http.post("/api/friends/requests", headers=other.auth,
                        json={"user_id": caller.user_id}).json()["data"]
    group = http.post("/api/friends/groups", headers=auth, json={"name": "fuzz"}).json()["data"]
    announcement = http.post(f"/api/threads/{thread['thread_id']}/announcements", headers=auth,
                             json={"content": "hi"}).json()["data"]
    message = http.post(f"/api/threads/{thread['thread_id']}/messages", headers=auth,
                        json={"body": "hi"}).json()["data"]
    http.post(f"/api/threads/{thread['thread_id']}/messages/{message['message_id']}/reactions",
              headers=auth, json={"emoji": "👍"})
    poll = http.post(f"/api/threads/{thread['thread_id']}/polls", headers=auth,
                     json={"question": "fuzz?", "options": ["a", "b"]}).json()["data"]
    bot = http.post("/api/bots", headers=auth, json={"name": "fuzz bot"}).json()["data"]
    hook = http.post("/api/webhooks", headers=auth, json={
        "url": "http://127.0.0.1:9/hook", "bot_id": bot["bot"]["id"]}).json()["data"]
    target = http.post("/api/me/push-targets", headers=auth, json={
        "kind": "unifiedpush", "endpoint": "http://127.0.0.1:9/push"}).json()["data"]
    return {"thread_id": thread["thread_id"], "user_id": other.user_id,
            "bot_id": bot["bot"]["id"], "hook_id": hook["id"], "target_id": target["id"],
            "message_id": message["message_id"], "emoji": "👍", "poll_id": poll["poll_id"],
            "request_id": request["id"], "group_id": group["id"],
            "announcement_id": announcement["announcement_id"], "session_id": "s-none",
            "invitation_id": 1, "rule_id": 1, "upload_id": "f-none"}


def _register(http: httpx.Client) -> Account:
    user_id = unique_id("f")
    response = http.post("/api/auth/register", json={
        "user_id": user_id, "name": user_id, "password": "pass-word-1"})
    assert response.status_code == 201, response.text
    data = response.json()["data"]
    return Account(user_id, data["token"], data["refresh_token"], data["mqtt"])


@pytest.fixture
def client(target: Target) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=target.base_url, timeout=10) as http:
        yield http


@pytest.mark.parametrize(("method", "path"), KEYS, ids=[f"{m} {p}" for m, p in KEYS])
def test_operation(target: Target, client: httpx.Client, method: str, path: str) -> None:
    op = OPERATIONS[(method, path)]
    caller = _register(client)
    other = _register(client)
    headers = target.admin.auth if op.auth == "admin" else caller.auth
    real = _real_objects(client, caller, other)
    schema = schemathesis.openapi.from_dict(target.document)
    operation = schema[openapi_path(path)][method]
    wanted = {p["name"] for p in target.document["paths"][openapi_path(path)][method.lower()]
              .get("parameters", []) if p["in"] == "path"}
    strategies = [
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    ]
    if wanted:
        strategies.append(operation.as_strategy(
            GenerationMode.POSITIVE, path_parameters={k: real[k] for k in wanted}))
    seen: list[int] = []

    @given(case=st.one_of(strategies))
    @settings(max_examples=EXAMPLES * len(strategies), deadline=None, database=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    def run(case: Case[Any]) -> None:
        response = case.call_and_validate(base_url=target.base_url, headers=headers,
                                          checks=CHECKS)
        seen.append(response.status_code)

    run()
    assert seen, "no request was sent"
    print(f"{method} {path}: {sorted(set(seen))}", file=sys.stderr)  # noqa: T201

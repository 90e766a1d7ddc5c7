"""Ask one JWT table case of each verifier: make the two users and the case's account state,
build the password, log in, and return whether the login was accepted.

- python: `ModelDirectory.check_credentials`, without its cache, in this process on mqim's
  database; the users are made through mqim's HTTP API.
- mosquitto: a CONNECT to Mosquitto with mqim's plugin; ended sessions and bans are sent over
  the control topic, as mqim's services do.
- hooks: mqim's HTTP login hooks in every broker format (one answer), same users as python.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiomqtt.exceptions import MqttConnectError

from models.tokens import decode_access_token
from mqim.directory import ModelDirectory
from tests.conformance.jwt_cases import HOOKS, MOSQUITTO, PYTHON, Login, TokenCase
from tests.conformance.world import NOT_AUTHORIZED, World, reason_code
from tests.helpers import Account, unique_id


async def database_login(world: World, case: TokenCase) -> tuple[Login, Account]:
    """Two registered users, and the case's state of the first, in mqim's database."""
    user, other = await world.new_account("u"), await world.new_account("o")
    secret = world.settings.jwt_secret
    login = Login(secret, user.user_id, decode_access_token(secret, user.token).session_id,
                  other.user_id, decode_access_token(secret, other.token).session_id,
                  int(time.time()))
    if case.state == "ended":
        await world.logout(user.token)
    elif case.state == "banned":
        await world.ban(user.user_id)
    elif case.state == "ended_elsewhere":
        await world.logout(await world.login_elsewhere(user))
    return login, user


def username_of(case: TokenCase, login: Login) -> str:
    return login.user if case.username == "user" else login.other


async def login_python(world: World, case: TokenCase) -> bool:
    login, _ = await database_login(world, case)
    directory = ModelDirectory(world.settings.jwt_secret, cache=False)
    with world.orm:
        return await directory.check_credentials(username_of(case, login), case.password(login))


async def login_hooks(world: World, case: TokenCase) -> bool:
    login, _ = await database_login(world, case)
    username, password = username_of(case, login), case.password(login)
    client_id = f"{username}:jwt"
    body = {"username": username, "password": password}

    async def post(path: str, extra: dict[str, Any], **headers: str) -> Any:
        response = await world.http.post(f"/api/internal/mqtt/{path}", json={**body, **extra},
                                         headers={**world.hook_headers, **headers})
        assert response.status_code in (200, 403), response.text
        return response

    go = await post("go-auth/user", {"clientid": client_id})
    emqx = await post("emqx/authn", {"clientid": client_id})
    vmq = await post("vernemq", {"client_id": client_id, "mountpoint": ""},
                     **{"vernemq-hook": "auth_on_register"})
    answers: dict[str, bool] = {
        "go-auth": go.status_code == 200, "emqx": emqx.json()["result"] == "allow",
        "vernemq": vmq.json() == {"result": "ok"}}
    assert len(set(answers.values())) == 1, f"the hook formats disagree: {answers}"
    return all(answers.values())


async def login_mosquitto(world: World, case: TokenCase) -> bool:
    login = Login(world.settings.jwt_secret, unique_id("u"), uuid.uuid4().hex, unique_id("o"),
                  uuid.uuid4().hex, int(time.time()))
    control, until = world.control, login.now + 3600
    if case.state == "ended":
        await control.end_session(login.user, login.session, until)
    elif case.state == "banned":
        await control.ban_user(login.user)
    elif case.state == "ended_elsewhere":
        await control.end_session(login.user, uuid.uuid4().hex, until)
    username = username_of(case, login)
    try:
        async with world.mqtt_client(username, case.password(login),
                                     client_id=f"{username}:jwt"):
            return True
    except MqttConnectError as exc:
        if reason_code(exc.rc) != NOT_AUTHORIZED:
            raise
        return False


LOGIN: dict[str, Callable[[World, TokenCase], Awaitable[bool]]] = {
    PYTHON: login_python, MOSQUITTO: login_mosquitto, HOOKS: login_hooks,
}

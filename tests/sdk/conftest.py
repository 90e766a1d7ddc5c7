"""SDK clients against the session's real stacks (the `server` fixture, both modes)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from mqim_client import Client
from tests.helpers import unique_id
from tests.stacks import Stack

PASSWORD = "pass-word-1"
Factory = Callable[..., Client]


def client_for(stack: Stack, **options: Any) -> Client:
    settings = stack.settings
    return Client(f"http://{settings.http}", broker=f"mqtt://{settings.mqtt}", **options)


@pytest.fixture
async def clients(server: Stack) -> AsyncIterator[Factory]:
    """Makes SDK clients for the stack; closes them all after the test."""
    made: list[Client] = []

    def make(**options: Any) -> Client:
        made.append(client_for(server, **options))
        return made[-1]

    yield make
    for client in made:
        await client.close()


async def signed_up(client: Client) -> Client:
    await client.register("sdk", PASSWORD, user_id=unique_id("sdk"))
    return client

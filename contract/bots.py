"""Bot accounts on the wire (docs/bots.md): what creating, listing and re-keying a bot answer.
A bot is shown as any user is (`UserProfile`, with `is_bot` true); signing in with its token
answers `SignedIn` (contract/accounts.py), deleting it `AccountDeleted`. A token is shown only
in the answer that made it; afterwards only its `prefix`. Times are ISO 8601 strings.
"""

from __future__ import annotations

from contract.http import Shape, UserProfile


class BotCreated(Shape):
    """POST /api/bots (201): the bot and its first API token."""

    bot: UserProfile
    token: str


class BotTokenView(Shape):
    """One API token of a bot, as its owner sees it: never the token itself."""

    prefix: str  # its first 8 characters ("mqb_" and 4 more)
    created_at: str
    last_used_at: str | None  # updated at most once a minute
    revoked_at: str | None


class BotView(Shape):
    """GET /api/bots: one bot of the caller, oldest first, with every token (newest first)."""

    bot: UserProfile
    owner_id: str
    created_at: str
    tokens: list[BotTokenView]


class BotTokenIssued(Shape):
    """POST /api/bots/{id}/token: a new token; every older one is revoked and the bot's login
    sessions ended (`revoked` counts the tokens revoked)."""

    bot_id: str
    token: str
    prefix: str
    revoked: int


class BotTokensRevoked(Shape):
    """DELETE /api/bots/{id}/token: every token revoked and the bot's login sessions ended."""

    bot_id: str
    revoked: int
    sessions_ended: int

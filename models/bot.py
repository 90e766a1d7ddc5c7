"""Bot accounts (docs/bots.md): a bot is a user with a row here (its owner, who made it with
POST /api/bots), and signs in with API tokens: long-lived and revocable; only their SHA-256 is
stored, the token itself is shown once. `prefix` (the first characters) lets an owner tell
tokens apart. (A table of its own, not columns of user_account: adding columns to that table
would make SQLite rebuild it on a downgrade, and the rebuild cascades.)"""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from models.user import User

TOKEN_PREFIX = "mqb_"  # noqa: S105  # how a bot token starts, not a secret


class Bot(Model):
    id = fields.BigIntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="bot", on_delete=fields.CASCADE, unique=True)
    user_id: str
    owner: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="bots_owned", on_delete=fields.CASCADE)
    owner_id: str
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "bot"
        indexes = (("owner_id",),)


class BotToken(Model):
    id = fields.BigIntField(primary_key=True)
    bot: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="bot_tokens", on_delete=fields.CASCADE)
    bot_id: str
    token_hash = fields.CharField(max_length=64, unique=True)
    prefix = fields.CharField(max_length=16)
    created_at = fields.DatetimeField(auto_now_add=True)
    last_used_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "bot_token"
        indexes = (("bot_id",),)

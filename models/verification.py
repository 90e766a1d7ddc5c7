"""Email verification codes (table). Only a hash of the code is stored; codes expire, allow a
few attempts, and are used once."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class VerificationCode(Model):
    id = fields.BigIntField(primary_key=True)
    email = fields.CharField(max_length=254, db_index=True)
    purpose = fields.CharField(max_length=16)  # register, login, change_email, restore
    code_hash = fields.CharField(max_length=64)
    attempts = fields.IntField(default=0)
    created_at = fields.DatetimeField(auto_now_add=True)
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)

    class Meta:
        table = "verification_code"

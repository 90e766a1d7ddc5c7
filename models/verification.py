"""Email verification codes: issue one (rate-limited), check one (a few attempts, used once).

Only an HMAC of the code is stored, keyed with a server secret and bound to the email and the
purpose, so the table alone does not give the codes away (a plain hash of six digits would).
Sending the mail is not done here: the API hands `IssuedCode.code` to its mailer and calls
`discard_code` when the mail could not be sent, so the sender is not rate-limited for nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise import fields
from tortoise.expressions import F
from tortoise.models import Model
from tortoise.transactions import in_transaction

from contract.errors import CodeInvalidError, InvalidParameterError, RateLimitedError
from models.clock import utcnow

PURPOSES = ("register", "change_email", "restore")
CODE_TTL = timedelta(minutes=10)
MAX_ATTEMPTS = 5
_EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


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


def normalise_email(email: str) -> str:
    """Lower-cased and checked; InvalidParameterError (1001) for anything not an address."""
    email = email.strip().lower()
    if len(email) > 254 or not _EMAIL_RE.fullmatch(email):
        raise InvalidParameterError(f"email {email!r} is not valid")
    return email


def _code_hash(secret: str, email: str, purpose: str, code: str) -> str:
    message = f"{purpose}\0{email}\0{code}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class IssuedCode:
    id: int
    email: str
    purpose: str
    code: str  # for the mail only: never stored, logged by the API or returned to a client
    expires_at: datetime


async def issue_code(email: str, purpose: str, *, secret: str, interval: int) -> IssuedCode:
    """A new 6-digit code for `email` and `purpose`, valid for CODE_TTL.

    Raises RateLimitedError when a code (of any purpose) went to this email less than
    `interval` seconds ago. The older unused codes of this email and purpose stop working.
    """
    email = normalise_email(email)
    if purpose not in PURPOSES:
        raise InvalidParameterError(f"purpose must be one of {', '.join(PURPOSES)}")
    now = utcnow()
    code = f"{secrets.randbelow(10**6):06d}"
    async with in_transaction():
        latest = await VerificationCode.filter(email=email).order_by("-created_at").first()
        if latest is not None and interval > 0:
            wait = interval - int((now - latest.created_at).total_seconds())
            if wait > 0:
                raise RateLimitedError(
                    f"a code was sent to this email recently; try again in {wait} s",
                    retry_after=wait,
                )
        # Older unused codes of this purpose are superseded; expired ones are dead weight.
        await VerificationCode.filter(email=email, purpose=purpose, used_at=None).delete()
        await VerificationCode.filter(email=email, expires_at__lte=now).delete()
        row = await VerificationCode.create(
            email=email, purpose=purpose, code_hash=_code_hash(secret, email, purpose, code),
            expires_at=now + CODE_TTL,
        )
    return IssuedCode(row.id, email, purpose, code, row.expires_at)


async def discard_code(code_id: int) -> None:
    """Forget a code that could not be sent, which also lifts the rate limit it set."""
    await VerificationCode.filter(id=code_id, used_at=None).delete()


async def consume_code(
    email: str, purposes: tuple[str, ...], code: str, *, secret: str
) -> None:
    """Use the newest live code sent to `email` for one of `purposes`, if `code` is it.

    Each try counts, claimed atomically before the comparison, so parallel guesses cannot get
    more than MAX_ATTEMPTS in. CodeInvalidError (2010) when there is no live code, the tries are
    used up, or the code is wrong. Not to be called inside a transaction that a later failure
    rolls back: a wrong try must stay counted.
    """
    now = utcnow()
    row = await VerificationCode.filter(
        email=email, purpose__in=purposes, used_at=None, expires_at__gt=now
    ).order_by("-id").first()
    if row is None:
        raise CodeInvalidError("no valid code for this email; request a new one")
    claimed = await VerificationCode.filter(
        id=row.id, used_at=None, attempts__lt=MAX_ATTEMPTS
    ).update(attempts=F("attempts") + 1)
    if not claimed:
        raise CodeInvalidError("too many wrong codes; request a new one")
    expected = _code_hash(secret, email, row.purpose, code.strip())
    if not hmac.compare_digest(expected, row.code_hash):
        left = MAX_ATTEMPTS - row.attempts - 1
        raise CodeInvalidError(
            f"wrong code; {left} attempt(s) left" if left > 0 else
            "wrong code; no attempts left, request a new one"
        )
    if not await VerificationCode.filter(id=row.id, used_at=None).update(used_at=now):
        raise CodeInvalidError("this code was already used; request a new one")

"""Access tokens (short-lived HS256 JWTs) and refresh tokens (opaque, stored only as a hash).

An access token names the user (`sub`) and the login session (`sid`); it is also the MQTT password
in the embedded mode. A refresh token is `<session id>.<secret>`; only its SHA-256 is stored.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

import jwt

from contract.errors import TokenExpiredError, TokenInvalidError
from models.clock import utcnow
from models.ids import SessionId, UserId

ALGORITHM = "HS256"


@dataclass(frozen=True)
class AccessClaims:
    user_id: UserId
    session_id: SessionId
    expires_at: int


def issue_access_token(secret: str, user_id: str, session_id: str, ttl: int) -> str:
    now = utcnow()
    claims = {
        "sub": user_id,
        "sid": session_id,
        "typ": "access",
        "iat": now,
        "exp": now + timedelta(seconds=ttl),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode_access_token(secret: str, token: str) -> AccessClaims:
    """Verified claims; TokenExpiredError or TokenInvalidError otherwise."""
    try:
        claims = jwt.decode(
            token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub", "sid"]}
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenExpiredError("access token expired") from exc
    except jwt.InvalidTokenError as exc:
        raise TokenInvalidError("access token invalid") from exc
    if claims.get("typ") != "access":
        raise TokenInvalidError("not an access token")
    return AccessClaims(UserId(claims["sub"]), SessionId(claims["sid"]), int(claims["exp"]))


def new_refresh_secret() -> str:
    return secrets.token_urlsafe(32)


def hash_refresh_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def refresh_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_refresh_secret(secret), stored_hash)


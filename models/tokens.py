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


# An access token is ~250 bytes; the Mosquitto plugin refuses anything over this too.
MAX_TOKEN_BYTES = 8192
_TIME_CLAIMS = ("exp", "nbf", "iat")


def decode_access_token(secret: str, token: str) -> AccessClaims:
    """Verified claims; TokenExpiredError or TokenInvalidError otherwise.

    Held to the same cases as the Mosquitto plugin's C verifier (tests/conformance/): beyond
    PyJWT's checks, a token over MAX_TOKEN_BYTES and a time claim that is not a JSON number
    (PyJWT takes anything int() takes, "123" or true) are refused, as RFC 7519 requires.
    """
    if len(token.encode()) > MAX_TOKEN_BYTES:
        raise TokenInvalidError("access token invalid")
    try:
        claims = jwt.decode(
            token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub", "sid"]}
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenExpiredError("access token expired") from exc
    except jwt.InvalidTokenError as exc:
        raise TokenInvalidError("access token invalid") from exc
    if any(isinstance(claims[name], bool) or not isinstance(claims[name], int | float)
           for name in _TIME_CLAIMS if name in claims):
        raise TokenInvalidError("access token invalid")
    if claims.get("typ") != "access":
        raise TokenInvalidError("not an access token")
    return AccessClaims(UserId(claims["sub"]), SessionId(claims["sid"]), int(claims["exp"]))


def new_refresh_secret() -> str:
    return secrets.token_urlsafe(32)


def hash_refresh_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def refresh_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_refresh_secret(secret), stored_hash)


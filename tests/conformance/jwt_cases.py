"""The JWT conformance table: which MQTT passwords log a user in, asked of every verifier.

The verifiers: the Python one (`mqim.directory.ModelDirectory.check_credentials`, which decodes
with `models.tokens.decode_access_token` and asks the database whether the session is live; the
embedded broker and the HTTP hooks use it), mqim's Mosquitto plugin (a real CONNECT, the token as
password), and the HTTP hooks' login endpoints (mosquitto-go-auth, EMQX, VerneMQ; one answer).

Each case builds its password from a `Login`: a user with a live login session and another user
with one, both real in mqim's database, and the secret they share. Tokens are encoded here by
hand, so a case can put anything in the header, the claims or the encoding.

Like the ACL table: `not_in` names a verifier that cannot be asked the case (with why), `differs`
one that is known to answer the other way (with why, and which side should change).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from models.tokens import issue_access_token

PYTHON, MOSQUITTO, HOOKS = "python", "mosquitto", "hooks"
VERIFIERS = (PYTHON, MOSQUITTO, HOOKS)

DROP: Any = object()  # as a claim's value: leave the claim out


@dataclass(frozen=True)
class Login:
    secret: str
    user: str
    session: str
    other: str
    other_session: str
    now: int


Build = Callable[[Login], str]


@dataclass(frozen=True)
class TokenCase:
    name: str
    accepted: bool
    password: Build
    # Who logs in: the token's intended user, or the other one.
    username: Literal["user", "other"] = "user"
    # The user's account: live, banned, its session (the token's) ended, or another ended.
    state: Literal["live", "banned", "ended", "ended_elsewhere"] = "live"
    not_in: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    differs: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def runs_in(self, verifier: str) -> bool:
        return verifier not in self.not_in


# --- encoding ----------------------------------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(value: dict[str, Any] | bytes) -> str:
    return b64(value if isinstance(value, bytes) else json.dumps(value).encode())


_DIGESTS = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


def sign(signing_input: str, key: str, digest: str = "HS256") -> str:
    return b64(hmac.new(key.encode(), signing_input.encode(), _DIGESTS[digest]).digest())


def token(login: Login, header: dict[str, Any] | bytes | None = None,
          claims: dict[str, Any] | bytes | None = None, *, key: str | None = None,
          digest: str | None = "HS256") -> str:
    """A JWT of `claims` (default: a valid access token's) under `header` (default HS256),
    signed with HMAC-`digest` and `key` (default the secret); `digest` None: no signature."""
    head = segment({"alg": "HS256", "typ": "JWT"} if header is None else header)
    body = segment(access_claims(login) if claims is None else claims)
    signature = "" if digest is None else sign(f"{head}.{body}", key or login.secret, digest)
    return f"{head}.{body}.{signature}"


def access_claims(login: Login, **changes: Any) -> dict[str, Any]:
    """A valid access token's claims, as models/tokens.py issues them, with changes."""
    claims = {"sub": login.user, "sid": login.session, "typ": "access", "iat": login.now - 5,
              "exp": login.now + 600}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not DROP}


def with_claims(**changes: Any) -> Build:
    return lambda login: token(login, claims=access_claims(login, **changes))


def with_header(**header: Any) -> Build:
    return lambda login: token(login, {"alg": "HS256", "typ": "JWT", **header})


def raw_claims(text: Callable[[Login], str]) -> Build:
    """Claims given as JSON text, e.g. with a member twice."""
    return lambda login: token(login, claims=text(login).encode())


def issued(login: Login) -> str:
    return issue_access_token(login.secret, login.user, login.session, 600)


def non_canonical(login: Login) -> str:
    """The valid token with its signature's unused last bits set: the same bytes decoded,
    but not the encoding of them (43 characters carry 258 bits for 256)."""
    head, body, signature = issued(login).split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(signature[-1])
    assert len(signature) == 43
    assert last & 0b11 == 0
    return f"{head}.{body}.{signature[:-1]}{alphabet[last | 0b11]}"


def huge_claims(login: Login) -> str:
    return token(login, claims=access_claims(login, pad="x" * 12_000))


def standard_alphabet(login: Login) -> str:
    """The valid token in base64 with `+` and `/` (not base64url): grown with a claim until
    the signature has one of the characters that differ."""
    for n in range(200):
        candidate = token(login, claims=access_claims(login, n=n))
        if "-" in candidate or "_" in candidate:
            return candidate.replace("-", "+").replace("_", "/")
    raise AssertionError("no signature with - or _")


def duplicated_sub(first: str, last: str) -> Build:
    def build(login: Login) -> str:
        names = {"user": login.user, "other": login.other}
        return (f'{{"sub": "{names[first]}", "sid": "{login.session}", "typ": "access", '
                f'"exp": {login.now + 600}, "sub": "{names[last]}"}}')
    return raw_claims(build)


# --- why a verifier differs --------------------------------------------------------------------

PLUGIN_KNOWS_ONLY_ENDED_SESSIONS = (
    "the plugin keeps no sessions, only the ended ones it was told about: a signed token of a "
    "session it never heard of looks live to it (mqim signs no such token)"
)
MOSQUITTO_PASSWORD_IS_A_C_STRING = (
    "Mosquitto 2.0 hands plugins the password as a C string: the plugin cannot see past a NUL"
)


# --- the table ---------------------------------------------------------------------------------

JWT_CASES: tuple[TokenCase, ...] = (
    # Valid tokens.
    TokenCase("issued-by-mqim", True, issued),
    TokenCase("hand-encoded", True, lambda login: token(login)),
    TokenCase("extra-claims", True, with_claims(role="admin", scope=["all"], iss="elsewhere")),
    TokenCase("extra-header-fields", True, with_header(kid="k1", cty="x")),
    TokenCase("without-iat", True, with_claims(iat=DROP)),
    TokenCase("exp-as-float", True, lambda login: token(
        login, claims=access_claims(login, exp=login.now + 600.5))),
    TokenCase("exp-far-away", True, with_claims(exp=10**12)),
    TokenCase("nbf-in-the-past", True, lambda login: token(
        login, claims=access_claims(login, nbf=login.now - 60))),
    TokenCase("jti-string", True, with_claims(jti="abc")),
    TokenCase("aud-empty", True, with_claims(aud="")),
    TokenCase("padded-signature", True, lambda login: issued(login) + "="),
    TokenCase("another-session-of-the-user-ended", True, issued, state="ended_elsewhere"),
    TokenCase("duplicate-sub-the-last-is-the-user", True, duplicated_sub("other", "user")),
    # Expired, not yet valid.
    TokenCase("expired", False, lambda login: token(
        login, claims=access_claims(login, exp=login.now - 5))),
    TokenCase("issued-expired", False, lambda login: issue_access_token(
        login.secret, login.user, login.session, -5)),
    TokenCase("nbf-in-the-future", False, lambda login: token(
        login, claims=access_claims(login, nbf=login.now + 600))),
    TokenCase("iat-in-the-future", False, lambda login: token(
        login, claims=access_claims(login, iat=login.now + 600))),
    # Signature and algorithm.
    TokenCase("wrong-secret", False, lambda login: token(login, key=login.secret + "x")),
    TokenCase("alg-none-unsigned", False, lambda login: token(
        login, {"alg": "none", "typ": "JWT"}, digest=None)),
    TokenCase("alg-none-with-a-valid-signature", False, lambda login: token(
        login, {"alg": "none", "typ": "JWT"})),
    TokenCase("alg-None-capitalised", False, lambda login: token(
        login, {"alg": "None"}, digest=None)),
    TokenCase("alg-HS512", False, lambda login: token(login, {"alg": "HS512"}, digest="HS512")),
    TokenCase("alg-HS384", False, lambda login: token(login, {"alg": "HS384"}, digest="HS384")),
    TokenCase("alg-lowercase", False, lambda login: token(login, {"alg": "hs256"})),
    TokenCase("alg-missing", False, lambda login: token(login, {"typ": "JWT"})),
    TokenCase("header-not-an-object", False, lambda login: token(login, b'["HS256"]')),
    TokenCase("tampered-claims", False, lambda login: issued(login).split(".")[0] + "."
              + segment(access_claims(login, exp=login.now + 10**6)) + "."
              + issued(login).split(".")[2]),
    TokenCase("signature-non-canonical", False, non_canonical),
    TokenCase("signature-in-standard-base64", False, standard_alphabet),
    TokenCase("crit-header-unknown-extension", False, with_header(crit=["exp"])),
    TokenCase("b64-false-header", False, with_header(b64=False, crit=["b64"])),
    TokenCase("kid-not-a-string", False, with_header(kid=7)),
    TokenCase("duplicate-alg-the-last-is-none", False, lambda login: token(
        login, b'{"alg": "HS256", "alg": "none"}')),
    # Claims missing or of the wrong kind.
    TokenCase("exp-missing", False, with_claims(exp=DROP)),
    TokenCase("exp-null", False, with_claims(exp=None)),
    TokenCase("exp-boolean", False, with_claims(exp=True)),
    TokenCase("exp-numeric-string", False, lambda login: token(
        login, claims=access_claims(login, exp=str(login.now + 600)))),
    TokenCase("nbf-boolean", False, with_claims(nbf=True)),
    TokenCase("iat-numeric-string", False, with_claims(iat="100")),
    TokenCase("iat-not-a-number", False, with_claims(iat="yesterday")),
    TokenCase("sub-missing", False, with_claims(sub=DROP)),
    TokenCase("sub-not-a-string", False, with_claims(sub=12345)),
    TokenCase("sid-missing", False, with_claims(sid=DROP)),
    TokenCase("sid-empty", False, with_claims(sid="")),
    TokenCase("sid-not-a-string", False, with_claims(sid=12345)),
    TokenCase("typ-missing", False, with_claims(typ=DROP)),
    TokenCase("typ-refresh", False, with_claims(typ="refresh")),
    TokenCase("typ-capitalised", False, with_claims(typ="Access")),
    TokenCase("aud-present", False, with_claims(aud="elsewhere")),
    TokenCase("jti-not-a-string", False, with_claims(jti=7)),
    TokenCase("claims-not-an-object", False, lambda login: token(login, claims=b"[1, 2]")),
    TokenCase("claims-not-json", False, lambda login: token(login, claims=b"{sub: alice}")),
    TokenCase("claims-with-trailing-data", False, raw_claims(
        lambda login: json.dumps(access_claims(login)) + " x")),
    TokenCase("duplicate-sub-the-last-is-another", False, duplicated_sub("user", "other")),
    # Whose token, which session.
    TokenCase("token-of-another-user", False, issued, username="other"),
    TokenCase("session-of-another-user", False, lambda login: token(
        login, claims=access_claims(login, sid=login.other_session)),
              not_in=MappingProxyType({MOSQUITTO: PLUGIN_KNOWS_ONLY_ENDED_SESSIONS})),
    TokenCase("session-never-issued", False, with_claims(sid="never-issued"),
              not_in=MappingProxyType({MOSQUITTO: PLUGIN_KNOWS_ONLY_ENDED_SESSIONS})),
    TokenCase("session-ended", False, issued, state="ended"),
    TokenCase("user-banned", False, issued, state="banned"),
    # Not a token at all.
    TokenCase("garbage", False, lambda login: "not a token"),
    TokenCase("empty-password", False, lambda login: ""),
    TokenCase("two-segments", False, lambda login: issued(login).rsplit(".", 1)[0]),
    TokenCase("four-segments", False, lambda login: issued(login) + ".x"),
    TokenCase("trailing-newline", False, lambda login: issued(login) + "\n"),
    TokenCase("trailing-nul-and-junk", False, lambda login: issued(login) + "\0junk",
              not_in=MappingProxyType({MOSQUITTO: MOSQUITTO_PASSWORD_IS_A_C_STRING})),
    TokenCase("huge-garbage", False, lambda login: "a" * 30_000 + "." + "b" * 30_000 + ".c"),
    TokenCase("huge-but-signed", False, huge_claims),
)

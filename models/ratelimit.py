"""Abuse limits (docs/design.md section 11): login attempts per account and per client address,
registrations and verification codes per client address, sends per user.

Built on the `limits` library. Each limit allows N per window and refills as old hits age out,
like a token bucket holding N. A refused hit costs nothing, so waiting `retry_after` gets the next
one through. Logins, registrations and codes use moving windows: exact (no extra attempt where
one window meets the next), at the price of one stored entry per hit, which their small N
affords. Sends use a sliding-window counter: two integers per user whatever N, and N is large.
The counters live in `MQIM_RATE_LIMIT_STORAGE`: in memory they are per process, in Redis they
are shared by every process that uses it.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import re
import time

from limits import RateLimitItem
from limits.aio.storage import Storage
from limits.aio.strategies import (
    MovingWindowRateLimiter,
    RateLimiter,
    SlidingWindowCounterRateLimiter,
)
from limits.errors import StorageError
from limits.storage import storage_from_string

from config import Settings
from contract.errors import RateLimitedError

logger = logging.getLogger(__name__)

_NAMESPACE = "mqim"
# What `find_login` ignores in a phone number: "+1 (555) 0100" and "+15550100" are one account,
# so they must also be one counter.
_LOGIN_NOISE = re.compile(r"[\s()-]")
# An IPv6 client usually holds a whole /64: counting single addresses would give it 2**64 budgets.
_IPV6_PREFIX = 64
# While the storage fails, say so at most this often (seconds) rather than on every request.
_STORAGE_WARNING_INTERVAL = 60.0


def login_key(login: str) -> str:
    """The per-account counter of a login string, whether an account has it or not.

    Lower-cased and stripped of phone punctuation, so spelling one account differently does not
    buy more guesses (ids that differ only in those merge into one counter: stricter, never
    looser); hashed, so the key has a fixed size and the storage never holds what people typed
    into the login field.
    """
    normalised = _LOGIN_NOISE.sub("", login).lower()
    return hashlib.sha256(normalised.encode()).hexdigest()


def address_key(host: str | None) -> str:
    """The per-address counter of a client address: IPv4 as is, IPv6 by its /64."""
    if not host:
        return "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host  # not an IP (a unix socket path, a test client name): count it as it is
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, _IPV6_PREFIX), strict=False))
    return str(address)


class RateLimits:
    """The limits of one deployment; a limit set to None (off) never refuses.

    Every `hit_*` counts one attempt and raises RateLimitedError (1006, HTTP 429) with
    `retry_after` when it is over its limit. If the storage fails (Redis down), hits pass and a
    warning is logged: losing the limits for a while beats refusing every login and message.
    """

    def __init__(
        self,
        *,
        login_account: RateLimitItem | None = None,
        login_address: RateLimitItem | None = None,
        register_address: RateLimitItem | None = None,
        code_address: RateLimitItem | None = None,
        sends: RateLimitItem | None = None,
        storage_uri: str = "async+memory://",
    ) -> None:
        self.login_account = login_account
        self.login_address = login_address
        self.register_address = register_address
        self.code_address = code_address
        self.sends = sends
        self._exact: RateLimiter | None = None
        self._counter: RateLimiter | None = None
        if any((login_account, login_address, register_address, code_address, sends)):
            # wrap_exceptions: any backend's failure arrives as limits' StorageError.
            storage = storage_from_string(storage_uri, wrap_exceptions=True)
            if not isinstance(storage, Storage):  # a sync URI; Settings never gives one
                raise TypeError(f"{storage_uri!r} is not an asyncio storage of limits")
            self._exact = MovingWindowRateLimiter(storage)
            self._counter = SlidingWindowCounterRateLimiter(storage)
        self._last_warning = -math.inf

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimits:
        return cls(
            login_account=settings.rate_limit("login_account"),
            login_address=settings.rate_limit("login_address"),
            register_address=settings.rate_limit("register_address"),
            code_address=settings.rate_limit("code_address"),
            sends=settings.rate_limit("sends"),
            storage_uri=settings.rate_limit_storage_uri(),
        )

    async def hit_login(self, login: str, address: str | None) -> None:
        """Count a login attempt, before the password is checked.

        The address counts first: a client refused there does not use up the account's budget,
        so one noisy address cannot lock the account any further than it already has.
        """
        await self._hit(self._exact, self.login_address, "login-address", address_key(address),
                        "too many login attempts from this address")
        await self._hit(self._exact, self.login_account, "login-account", login_key(login),
                        "too many login attempts for this account")

    async def login_succeeded(self, login: str) -> None:
        """Forget the account's failed attempts: a user who mistyped a few times and then got in
        starts afresh. The per-address count stays, or signing in to one's own account would
        reset the budget for guessing other people's."""
        if self._exact is None or self.login_account is None:
            return
        try:
            await self._exact.clear(self.login_account, _NAMESPACE, "login-account",
                                    login_key(login))
        except StorageError as exc:
            self._storage_failed(exc)

    async def hit_register(self, address: str | None) -> None:
        await self._hit(self._exact, self.register_address, "register-address",
                        address_key(address), "too many registrations from this address")

    async def hit_code(self, address: str | None) -> None:
        await self._hit(self._exact, self.code_address, "code-address", address_key(address),
                        "too many verification codes requested from this address")

    async def hit_send(self, user_id: str, cost: int = 1) -> None:
        """Count `cost` messages sent by `user_id` (MQTT and HTTP alike). A cost above the whole
        limit is always refused."""
        await self._hit(self._counter, self.sends, "sends", user_id, "sending too fast",
                        cost=cost)

    async def _hit(self, limiter: RateLimiter | None, item: RateLimitItem | None, kind: str,
                   key: str, msg: str, *, cost: int = 1) -> None:
        if item is None or limiter is None:
            return
        try:
            if await limiter.hit(item, _NAMESPACE, kind, key, cost=cost):
                return
            stats = await limiter.get_window_stats(item, _NAMESPACE, kind, key)
        except StorageError as exc:
            self._storage_failed(exc)
            return
        # When the oldest counted hit ages out (the counter's estimate of it, for sends); never
        # 0, so clients do back off.
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        raise RateLimitedError(f"{msg}; try again in {retry_after} s", retry_after=retry_after)

    def _storage_failed(self, exc: StorageError) -> None:
        now = time.monotonic()
        if now - self._last_warning >= _STORAGE_WARNING_INTERVAL:
            self._last_warning = now
            logger.warning("rate limit storage failed, limits not enforced: %s", exc.storage_error)

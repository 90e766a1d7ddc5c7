"""The HTTP half of the SDK: the JSON envelope, the token bundle, and refreshing the access token
before it expires and once more on a 401.

A refresh token works once (docs/http-api.md, "Accounts": presenting a rotated one is taken as
theft and ends the session), so refreshes are serialised behind a lock, and a request that got a
401 refreshes only if nobody refreshed since it was sent.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict

from mqim_client.errors import ApiError, NotLoggedInError, SessionEndedError
from mqim_client.events import UserSelf


class MqttCredentials(BaseModel):
    """What the broker takes at CONNECT: the user id, the access token, the client id."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    username: str
    password: str
    client_id: str
    topic_prefix: str


class Session(BaseModel):
    """The token bundle of register, login and refresh, and when its access token expires
    (`time.monotonic()` seconds, counted from when the request was sent)."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    token: str
    expires_in: int
    refresh_token: str
    session_id: str
    user: UserSelf
    mqtt: MqttCredentials
    expires_at: float = 0.0

    @property
    def user_id(self) -> str:
        return self.user.id


def _error(response: httpx.Response) -> ApiError:
    try:
        body = response.json()
        return ApiError(response.status_code, int(body["code"]), str(body["error"]),
                        str(body["msg"]), body.get("retry_after"))
    except (ValueError, KeyError, TypeError):  # not mqim's envelope (a proxy's page, say)
        return ApiError(response.status_code, -1, "http_error", response.text[:200])


class Api:
    """An mqim server's HTTP API for one user session."""

    def __init__(self, base_url: str, *, http: httpx.AsyncClient | None = None,
                 refresh_margin: float = 60.0, timeout: float = 10.0) -> None:
        self._http = http or httpx.AsyncClient(base_url=base_url, timeout=timeout)
        self._owns_http = http is None
        self.refresh_margin = refresh_margin
        self.session: Session | None = None
        self.refreshes = 0
        self._refresh_lock = asyncio.Lock()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def _call(self, method: str, path: str, token: str | None = None,
                    **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await self._http.request(method, path, headers=headers, **kwargs)
        if response.is_error:
            raise _error(response)
        return response.json()["data"]

    async def _sign_in(self, path: str, body: dict[str, Any]) -> Session:
        sent = time.monotonic()
        data = await self._call("POST", path, json=body)
        session = Session.model_validate(data)
        self.session = session.model_copy(update={"expires_at": sent + session.expires_in})
        return self.session

    async def register(self, body: dict[str, Any]) -> Session:
        return await self._sign_in("/api/auth/register", body)

    async def login(self, body: dict[str, Any]) -> Session:
        return await self._sign_in("/api/auth/login", body)

    def _current(self) -> Session:
        if self.session is None:
            raise NotLoggedInError("register() or login() first")
        return self.session

    async def refresh(self, stale_token: str | None = None) -> Session:
        """A new bundle for the refresh token; with `stale_token`, only if the session still
        has that access token (another task may have refreshed meanwhile)."""
        async with self._refresh_lock:
            session = self._current()
            if stale_token is not None and session.token != stale_token:
                return session
            try:
                fresh = await self._sign_in("/api/auth/refresh",
                                            {"refresh_token": session.refresh_token})
            except ApiError as exc:
                if exc.status == 401:
                    raise SessionEndedError(f"refresh refused: {exc.error}") from exc
                raise
            self.refreshes += 1
            return fresh

    async def fresh_session(self) -> Session:
        """The session, refreshed first if its access token expires within the margin (at
        most a quarter of its lifetime, so short-lived tokens are not refreshed constantly)."""
        session = self._current()
        margin = min(self.refresh_margin, session.expires_in / 4)
        if time.monotonic() >= session.expires_at - margin:
            return await self.refresh(session.token)
        return session

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """An authenticated request; returns the envelope's `data` or raises ApiError. A 401
        refreshes the token and tries once more."""
        session = await self.fresh_session()
        try:
            return await self._call(method, path, session.token, **kwargs)
        except ApiError as exc:
            if exc.status != 401:
                raise
        session = await self.refresh(session.token)
        return await self._call(method, path, session.token, **kwargs)

    async def logout(self) -> None:
        await self.request("POST", "/api/auth/logout")
        self.session = None

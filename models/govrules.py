"""The pure rules of governing a thread (no database): what a look field, a setting, a
nickname or a mute's end may be, and whether a member's mute holds (docs/threads.md).

An indefinite mute is stored as `MUTED_FOREVER` (a far-future `muted_until`), so "is this member
muted" is one comparison everywhere (`mute_active`); the wire shows it as `until: null`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import emoji

from contract.errors import InvalidParameterError
from models.thread import MUTED_FOREVER, HistoryVisibility, Member, Visibility
from models.upload import UPLOAD_PATH
from models.user import TEXT_CONTROLS, check_text, has_bad_chars

NAME_MAX = 100
IMAGE_URL_MAX = 1024
DESCRIPTION_MAX = 1000
NICKNAME_MAX = 64
EMOJI_MAX = 32  # the column; one emoji (a ZWJ family, a flag) is a few code points
MUTE_UNTIL_MAX_CHARS = 64
_COLOR = re.compile(r"#[0-9A-Fa-f]{6}")
LOOKS = ("name", "image_url", "color", "emoji", "description")
_SETTING_KINDS: dict[str, Any] = {"history_visibility": HistoryVisibility,
                                  "visibility": Visibility, "join_approval": bool,
                                  "admins_only_send": bool}



def mute_active(member: Member, now: datetime) -> bool:
    """True while an owner's or admin's mute holds: the member's sends are refused (3010)."""
    return member.muted_until is not None and member.muted_until > now


def mute_until_text(until: datetime | None) -> str | None:
    """A mute's end on the wire: ISO 8601, None for an indefinite mute (or none)."""
    return None if until is None or until >= MUTED_FOREVER else until.isoformat()


def parse_mute_until(value: str | None, now: datetime) -> datetime:
    """`until` of POST …/mutes: an ISO 8601 time with its zone, in the future; None: forever."""
    if value is None:
        return MUTED_FOREVER
    try:
        until = datetime.fromisoformat(value) if len(value) <= MUTE_UNTIL_MAX_CHARS else None
    except ValueError:
        until = None
    if until is None or until.tzinfo is None:
        raise InvalidParameterError("until must be an ISO 8601 date and time with its time zone")
    try:
        until = until.astimezone(UTC)
    except OverflowError:  # year 1 or 9999 shifted past the calendar's ends by its offset
        raise InvalidParameterError("until is out of range") from None
    if until <= now or until >= MUTED_FOREVER:
        raise InvalidParameterError("until must be in the future (or null: until unmuted)")
    return until


def check_look(name: str, value: Any) -> str | None:
    """A new value of a look field, normalised; None (or "", except for `name`) clears it."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidParameterError(f"{name} must be a string or null")
    if name == "name":
        if not value.strip() or len(value) > NAME_MAX:
            raise InvalidParameterError(f"name must be 1 to {NAME_MAX} characters")
        return check_text(value, "name")
    if value == "":
        return None
    if name == "color":
        if not _COLOR.fullmatch(value):
            raise InvalidParameterError("color must be #RRGGBB (hexadecimal)")
        return value.upper()
    if name == "emoji":
        if len(value) > EMOJI_MAX or not emoji.is_emoji(value):
            raise InvalidParameterError("emoji must be exactly one emoji")
        return value
    if name == "image_url":
        if UPLOAD_PATH.fullmatch(value):  # PUT /api/threads/{id}/image: an upload of ours
            return value
        parts = urlsplit(value)
        if (len(value) > IMAGE_URL_MAX or parts.scheme not in ("http", "https")
                or not parts.netloc or any(c.isspace() for c in value)
                or has_bad_chars(value)):
            raise InvalidParameterError(
                f"image_url must be an http(s) URL of at most {IMAGE_URL_MAX} characters, "
                "or an upload's /api/uploads/{upload_id}")
        return value
    if name == "description":
        if len(value) > DESCRIPTION_MAX:
            raise InvalidParameterError(f"description must be at most {DESCRIPTION_MAX} characters")
        return check_text(value, "description", TEXT_CONTROLS)
    raise InvalidParameterError(f"{name} is not a field of a thread")


def check_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The settings a PATCH names, with valid values (none may be null)."""
    checked: dict[str, Any] = {}
    for key, value in settings.items():
        kind = _SETTING_KINDS.get(key)
        if kind is None or not (isinstance(value, bool) if kind is bool else value in tuple(kind)):
            raise InvalidParameterError(f"settings.{key}: not a setting, or a wrong value")
        checked[key] = kind(value)
    return checked


def check_nickname(nickname: str | None) -> str | None:
    if nickname is None:
        return None
    if not nickname.strip() or len(nickname) > NICKNAME_MAX:
        raise InvalidParameterError(
            f"nickname must be 1 to {NICKNAME_MAX} characters (null clears it)")
    return check_text(nickname, "nickname")



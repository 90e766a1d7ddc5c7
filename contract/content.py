"""Typed message content (docs/messages.md, "Content"): the message types, their seed-004
aliases, and the shape of `content` for each type, checked in pure Python (no database: this
runs on the bridge's hot path).

    type_name(raw) -> "image"            # 2, "image" -> "image"; "voice" -> "audio"
    parse_content("image", {...}) -> the normalised content (None stays None)

Every refusal is a ContentInvalidError (4003) whose message names the field. Media may point at
an upload (`upload_id`, resolved and filled in by actions/messaging.py) or at a URL (http(s), or
one of ours: `/api/uploads/...`), exactly one of the two.
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    StringConstraints,
    ValidationError,
    model_validator,
)

from contract.errors import ContentInvalidError
from contract.fields import ID_PATTERN

TYPE_NAMES = ("text", "image", "file", "audio", "video", "location", "sticker", "custom")
# Made by the server only (POST .../polls builds the draft); never accepted from a client.
POLL = "poll"
ALIASES: dict[str | int, str] = {
    1: "text", 2: "image", 3: "video", 4: "audio", 5: "file", 100: "custom", "voice": "audio",
}
UPLOADS_PATH = "/api/uploads/"
URL_MAX = 2048
NAME_MAX = 255
SIZE_MAX = 2**53  # what a JSON number holds exactly
DIMENSION_MAX = 100_000
DURATION_MAX = 7 * 24 * 3600  # seconds
CUSTOM_DATA_MAX_BYTES = 16 * 1024


def type_name(raw: str | int) -> str:
    """The message type a client named, by name or alias; ContentInvalidError otherwise."""
    if isinstance(raw, str) and raw in TYPE_NAMES:
        return raw
    if not isinstance(raw, bool) and raw in ALIASES:
        return ALIASES[raw]
    if raw == POLL:
        raise ContentInvalidError("type: polls are created with POST /api/threads/{id}/polls")
    raise ContentInvalidError(
        f"type must be one of {', '.join(TYPE_NAMES)} (or 1, 2, 3, 4, 5, 100, voice)")


def _url(value: str) -> str:
    parts = urlsplit(value)
    ours = value.startswith(UPLOADS_PATH) and len(value) > len(UPLOADS_PATH)
    if not ours and (parts.scheme not in ("http", "https") or not parts.netloc):
        raise ValueError(f"must be an http(s) URL or a {UPLOADS_PATH}... path")
    if any(c.isspace() or ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in value):
        raise ValueError("must not contain spaces or control characters")
    return value


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


Url = Annotated[StrictStr, Field(min_length=1, max_length=URL_MAX), AfterValidator(_url)]
UploadId = Annotated[StrictStr, StringConstraints(pattern=f"^(?:{ID_PATTERN})$")]
Size = Annotated[StrictInt, Field(ge=0, le=SIZE_MAX)]
Dimension = Annotated[StrictInt, Field(ge=1, le=DIMENSION_MAX)]
Seconds = Annotated[StrictFloat, Field(ge=0, le=DURATION_MAX), AfterValidator(_finite)]
Name = Annotated[StrictStr, Field(min_length=1, max_length=NAME_MAX)]
ShortId = Annotated[StrictStr, Field(min_length=1, max_length=64)]


class _Content(BaseModel):
    # Unknown keys are refused: what is stored is exactly what the contract describes.
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Media(_Content):
    url: Url | None = None
    upload_id: UploadId | None = None
    size: Size | None = None

    @model_validator(mode="after")
    def _one_source(self) -> _Media:
        if (self.url is None) == (self.upload_id is None):
            raise ValueError("give exactly one of url or upload_id")
        return self


class ImageContent(_Media):
    width: Dimension | None = None
    height: Dimension | None = None


class VideoContent(_Media):
    duration: Seconds | None = None
    thumbnail_url: Url | None = None


class AudioContent(_Media):
    duration: Seconds | None = None


class FileContent(_Media):
    name: Name | None = None


class LocationContent(_Content):
    lat: Annotated[StrictFloat, Field(ge=-90, le=90), AfterValidator(_finite)]
    lng: Annotated[StrictFloat, Field(ge=-180, le=180), AfterValidator(_finite)]
    name: Name | None = None


class StickerContent(_Content):
    sticker_id: ShortId
    url: Url | None = None


def _bounded(data: dict[str, Any]) -> dict[str, Any]:
    if len(json.dumps(data, separators=(",", ":"))) > CUSTOM_DATA_MAX_BYTES:
        raise ValueError(f"must be at most {CUSTOM_DATA_MAX_BYTES} bytes as JSON")
    return data


class CustomContent(_Content):
    custom_type: ShortId
    data: Annotated[dict[str, Any], AfterValidator(_bounded)]


MODELS: dict[str, type[_Content]] = {
    "image": ImageContent, "video": VideoContent, "audio": AudioContent, "file": FileContent,
    "location": LocationContent, "sticker": StickerContent, "custom": CustomContent,
}
# Content that may point at an upload.
MEDIA_TYPES = ("image", "video", "audio", "file")


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors()[:3]:
        where = ".".join(["content", *(str(p) for p in error["loc"])])
        problems.append(f"{where}: {error['msg'].removeprefix('Value error, ')}")
    return "; ".join(problems)


def parse_content(type_: str, content: Any) -> dict[str, Any] | None:
    """`content` checked against `type_`'s model and normalised (absent fields left out);
    ContentInvalidError naming the field otherwise. A text message takes no content."""
    if content is None:
        return None
    model = MODELS.get(type_)
    if model is None:
        raise ContentInvalidError(f"content: a {type_} message takes no content (use body)")
    if not isinstance(content, dict):
        raise ContentInvalidError("content: must be an object")
    try:
        parsed = model.model_validate(content)
    except ValidationError as exc:
        raise ContentInvalidError(_describe(exc)) from exc
    return parsed.model_dump(exclude_none=True)

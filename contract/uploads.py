"""Uploads on the wire (docs/design.md section 9): what `POST /api/uploads` answers. The bytes
themselves are fetched from `url` (`GET /api/uploads/{upload_id}`) with the bearer token."""

from __future__ import annotations

from contract.http import Shape


class UploadView(Shape):
    """A stored file. `content_type` is what the server sniffed from the bytes (never the
    client's claim; `application/octet-stream` when unknown); `width`/`height` are set for
    PNG, JPEG, GIF and WebP images, null otherwise."""

    upload_id: str
    url: str
    name: str
    size: int
    content_type: str
    width: int | None
    height: int | None
    sha256: str

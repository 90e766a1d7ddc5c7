"""Uploads (docs/design.md section 9): store a stream, learn what it is, keep a row; hand it back
to those `models.upload.may_read_upload` allows.

The stream is never trusted: its type is sniffed from the first bytes (a table of magic numbers,
not the client's Content-Type), image dimensions are read from the header only (Pillow, bounded
read, no decoding), and the size cap holds while streaming (storage/base.py). A row is written
only once the bytes are stored; if the row cannot be written, the object is deleted again.
"""

from __future__ import annotations

import io
import re
import unicodedata
import warnings
from collections.abc import AsyncIterable, AsyncIterator, Sequence

from PIL import Image, UnidentifiedImageError

from contract.errors import InvalidParameterError, UploadNotFoundError, UploadTooLargeError
from contract.uploads import UploadView
from models.msgfile import unreferenced
from models.upload import NAME_MAX, Upload, new_upload_id, readable_upload
from storage import Download, Storage, TooLargeError

# Enough for every header in the table and for image dimensions (a JPEG's size follows its EXIF
# block, which is at most 64 KiB).
HEAD_BYTES = 128 * 1024
OCTET_STREAM = "application/octet-stream"
# Dimensions are metadata for clients; an image claiming more pixels than this gets none (it is
# still stored: we never decode it, but we do not advertise a decompression bomb as an image).
MAX_IMAGE_PIXELS = 64_000_000
_IMAGE_FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/gif": "GIF",
                  "image/webp": "WEBP"}
# (offset, magic, type); the first match wins.
_MAGIC: list[tuple[int, bytes, str]] = [
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (0, b"%PDF-", "application/pdf"),
    (0, b"PK\x03\x04", "application/zip"),
    (0, b"\x1f\x8b", "application/gzip"),
    (0, b"ID3", "audio/mpeg"),
    (0, b"OggS", "audio/ogg"),
    (0, b"fLaC", "audio/flac"),
    (0, b"\x1a\x45\xdf\xa3", "video/webm"),
]
_RIFF = {b"WEBP": "image/webp", b"WAVE": "audio/wav", b"AVI ": "video/x-msvideo"}
_FTYP = {b"heic": "image/heic", b"heix": "image/heic", b"avif": "image/avif",
         b"qt  ": "video/quicktime", b"M4A ": "audio/mp4"}
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]")


def sniff_type(head: bytes) -> str:
    """The content type the first bytes show; application/octet-stream when unknown."""
    for offset, magic, kind in _MAGIC:
        if head[offset:offset + len(magic)] == magic:
            return kind
    if head[:4] == b"RIFF" and head[8:12] in _RIFF:
        return _RIFF[head[8:12]]
    if head[4:8] == b"ftyp":
        return _FTYP.get(head[8:12], "video/mp4")
    return OCTET_STREAM


def image_size(head: bytes, content_type: str) -> tuple[int, int] | None:
    """(width, height) from an image's header, or None (not an image, a truncated or lying
    header, or more pixels than MAX_IMAGE_PIXELS)."""
    fmt = _IMAGE_FORMATS.get(content_type)
    if fmt is None:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(head), formats=[fmt]) as image:  # header only
                width, height = image.size
    except (UnidentifiedImageError, Image.DecompressionBombWarning,
            Image.DecompressionBombError, OSError, ValueError, SyntaxError):
        return None
    if width < 1 or height < 1 or width * height > MAX_IMAGE_PIXELS:
        return None
    return width, height


def clean_name(name: str) -> str:
    """A display name safe anywhere: the last path segment only, no control or path characters,
    NFC, at most NAME_MAX characters; "file" when nothing is left."""
    name = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE_NAME.sub("_", name).strip(" .")
    return name[:NAME_MAX] or "file"


async def _split_head(chunks: AsyncIterable[bytes]) -> tuple[bytes, AsyncIterator[bytes]]:
    """The first HEAD_BYTES (or all, if shorter), and the whole stream again from its start."""
    source = aiter(chunks)
    head = bytearray()
    while len(head) < HEAD_BYTES:
        try:
            head += await anext(source)
        except StopAsyncIteration:
            break

    async def whole() -> AsyncIterator[bytes]:
        if head:
            yield bytes(head)
        async for chunk in source:
            yield chunk

    return bytes(head), whole()


def upload_url(upload_id: str) -> str:
    return f"/api/uploads/{upload_id}"


def view_of(upload: Upload) -> UploadView:
    return UploadView(upload_id=upload.id, url=upload_url(upload.id), name=upload.name,
                      size=upload.size, content_type=upload.content_type, width=upload.width,
                      height=upload.height, sha256=upload.sha256)


async def store_upload(storage: Storage, owner_id: str, filename: str,
                       chunks: AsyncIterable[bytes], *, max_bytes: int) -> UploadView:
    """Stream `chunks` into storage and record it; UploadTooLargeError past `max_bytes` (nothing
    kept); an empty file is refused (InvalidParameterError): it cannot be a useful attachment."""
    head, stream = await _split_head(chunks)
    if not head:
        raise InvalidParameterError("the file is empty")
    content_type = sniff_type(head)
    upload_id = new_upload_id()
    key = f"uploads/{upload_id}"
    try:
        stored = await storage.put(key, stream, max_bytes=max_bytes, content_type=content_type)
    except TooLargeError as exc:
        raise UploadTooLargeError(f"the file is larger than {max_bytes} bytes") from exc
    size = image_size(head, content_type)
    try:
        upload = await Upload.create(
            id=upload_id, owner_id=owner_id, storage_key=key, name=clean_name(filename),
            size=stored.size, content_type=content_type, width=size[0] if size else None,
            height=size[1] if size else None, sha256=stored.sha256)
    except BaseException:
        await storage.delete(key)
        raise
    return view_of(upload)


async def fetch_upload(storage: Storage, user_id: str, upload_id: str) -> tuple[Upload, Download]:
    """The upload and how to hand it out, if `user_id` may read it; UploadNotFoundError
    otherwise, and also when its bytes are gone from storage."""
    upload = await readable_upload(user_id, upload_id)
    try:
        download = await storage.get(upload.storage_key, filename=upload.name,
                                     content_type=upload.content_type)
    except FileNotFoundError as exc:
        raise UploadNotFoundError(f"no upload {upload_id}") from exc
    return upload, download


async def erase_unreferenced(storage: Storage, upload_ids: Sequence[str]) -> None:
    """After an unsend: delete from storage, then from the table, the files no message
    references any more. The row goes last, so a failed delete leaves a row to retry from."""
    for upload in await unreferenced(upload_ids):
        await storage.delete(upload.storage_key)
        await upload.delete()


async def discard_upload(storage: Storage, upload_id: str) -> None:
    """Forget an upload made for a request that then failed (a multipart send that was refused,
    an avatar that is not an image): bytes first, then the row, as in erase_unreferenced."""
    upload = await Upload.get_or_none(id=upload_id)
    if upload is not None:
        await storage.delete(upload.storage_key)
        await upload.delete()

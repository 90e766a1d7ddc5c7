"""Where uploaded files live: a `Storage` protocol (base.py) and its two backends, local disk
(local.py) and S3-compatible object storage (s3.py); `open_storage(settings)` picks one.

It knows bytes and keys only: no database, no HTTP, no users (actions/uploads.py joins them)."""

from __future__ import annotations

from config import Settings
from storage.base import Download, Storage, Stored, TooLargeError
from storage.local import LocalStorage
from storage.s3 import S3Storage


def open_storage(settings: Settings) -> Storage:
    """The backend `MQIM_STORAGE_URL` names. Opens no connection: each call of a backend
    method does its own I/O."""
    url = settings.storage()
    if url.kind == "s3":
        return S3Storage(url)
    return LocalStorage(url.path)


__all__ = ["Download", "LocalStorage", "S3Storage", "Storage", "Stored", "TooLargeError",
           "open_storage"]

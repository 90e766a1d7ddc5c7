"""Uploads (docs/design.md section 9): `POST /api/uploads` (multipart, field `file`) and
`GET /api/uploads/{upload_id}`.

The multipart body is parsed as it arrives (python-multipart's push parser), and the `file`
part's bytes go straight on to storage: nothing is spooled to a temporary file first, and reading
stops at the part's end (the rest of the body is never read, unless the caller wants the small
text fields after it: `FilePart.finish`, for a multipart send). A Content-Length that cannot fit
under the cap is refused before any byte is read; a chunked body is stopped once past it.
`receive_file` is that whole intake, shared by the multipart send and the avatar and thread
image routes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from actions.uploads import fetch_upload, store_upload
from api.auth import authenticate, state_of
from api.envelope import ok
from contract.errors import InvalidParameterError, UploadTooLargeError
from contract.uploads import UploadView
from storage import Storage
from storage.base import content_disposition

FIELD = "file"
# Room for the multipart framing around the file: boundaries, part headers, a few small fields.
FRAMING_BYTES = 64 * 1024
# Longest part header we keep (a Content-Disposition with a long file name fits easily).
_HEADER_MAX = 8 * 1024
# The other (text) parts together: a caption, a client_msg_id, a type.
FIELDS_MAX = 32 * 1024


class FilePart:
    """The `file` part of a multipart body, pulled through the parser chunk by chunk; the other
    parts' values (text, FIELDS_MAX in all) land in `fields`."""

    def __init__(self, body: AsyncIterator[bytes], boundary: bytes) -> None:
        self._body = body
        self._header = bytearray()
        self._headers: dict[str, str] = {}
        self._pending: list[bytes] = []
        self._inside = False  # in the file part's data
        self._done = False  # the file part has ended
        self.filename: str | None = None
        self.fields: dict[str, str] = {}
        self._other: str | None = None  # the name of the text part being read
        self._value = bytearray()
        self._fields_size = 0
        self._ended = False  # the closing boundary was read
        self._parser = MultipartParser(boundary, callbacks={
            "on_header_field": self._on_header_field, "on_header_value": self._on_header_value,
            "on_header_end": self._on_header_end, "on_headers_finished": self._on_headers,
            "on_part_data": self._on_data, "on_part_end": self._on_end,
            "on_end": self._on_body_end,
        })
        self._field = b""

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header += data[start:end]
        if len(self._header) > _HEADER_MAX:
            raise InvalidParameterError("a multipart header is too long")

    def _on_header_end(self) -> None:
        self._headers[self._field.decode("latin-1").lower()] = self._header.decode(
            "utf-8", "replace")
        self._field, self._header = b"", bytearray()

    def _on_headers(self) -> None:
        disposition = self._headers.get("content-disposition", "").encode("utf-8", "replace")
        _, options = parse_options_header(disposition)
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if name == FIELD and self.filename is None:
            self._inside = True
            self.filename = options.get(b"filename", b"file").decode("utf-8", "replace")
        elif name != FIELD:
            self._other, self._value = name, bytearray()
        self._headers = {}

    def _on_data(self, data: bytes, start: int, end: int) -> None:
        if self._inside:
            self._pending.append(data[start:end])
        elif self._other is not None:
            self._fields_size += end - start
            if self._fields_size > FIELDS_MAX:
                raise InvalidParameterError(f"the text parts are over {FIELDS_MAX} bytes")
            self._value += data[start:end]

    def _on_end(self) -> None:
        if self._inside:
            self._inside, self._done = False, True
        elif self._other is not None:
            self.fields.setdefault(self._other, self._value.decode("utf-8", "replace"))
            self._other = None

    def _on_body_end(self) -> None:
        self._ended = True

    async def _feed(self) -> None:
        try:
            chunk = await anext(self._body)
        except StopAsyncIteration:
            raise InvalidParameterError(f"the body ended before the whole `{FIELD}` part") from None
        try:
            self._parser.write(chunk)
        except MultipartParseError as exc:
            raise InvalidParameterError(f"malformed multipart body: {exc}") from exc

    async def open(self) -> str:
        """Read up to the `file` part's data; its file name (or "file")."""
        while self.filename is None:
            await self._feed()
        return self.filename

    async def finish(self) -> dict[str, str]:
        """Read the rest of the body (after the file part) for its text parts; all of them."""
        while not self._ended:
            try:
                chunk = await anext(self._body)
            except StopAsyncIteration:
                raise InvalidParameterError("the multipart body ended early") from None
            try:
                self._parser.write(chunk)
            except MultipartParseError as exc:
                raise InvalidParameterError(f"malformed multipart body: {exc}") from exc
        return self.fields

    async def chunks(self) -> AsyncIterator[bytes]:
        while True:
            pending, self._pending = self._pending, []
            for piece in pending:
                if piece:
                    yield piece
            if self._done:
                return
            await self._feed()


def _storage(request: Request) -> Storage:
    return state_of(request).ctx.storage


async def receive_file(request: Request, owner_id: str) -> tuple[UploadView, FilePart]:
    """Store the request's multipart `file` part as `owner_id`'s upload; the part, for the text
    fields around it (those after the file need `FilePart.finish`)."""
    max_bytes = state_of(request).ctx.settings.max_upload_bytes
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > max_bytes + FRAMING_BYTES:
        raise UploadTooLargeError(f"the file is larger than {max_bytes} bytes")
    kind, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise InvalidParameterError(f"send multipart/form-data with the file in `{FIELD}`")
    part = FilePart(aiter(request.stream()), boundary)
    filename = await part.open()
    view = await store_upload(_storage(request), owner_id, filename, part.chunks(),
                              max_bytes=max_bytes)
    return view, part


def is_multipart(request: Request) -> bool:
    kind, _ = parse_options_header(request.headers.get("content-type", ""))
    return kind == b"multipart/form-data"


async def upload(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    view, _ = await receive_file(request, caller.user_id)
    return ok(view, status=201)


async def download(request: Request) -> Response:
    caller = await authenticate(request)
    found, how = await fetch_upload(_storage(request), caller.user_id,
                                    request.path_params["upload_id"])
    if how.url is not None:
        return RedirectResponse(how.url, status_code=302)
    assert how.chunks is not None  # noqa: S101  # a Download is a URL or bytes
    headers = {
        "Content-Disposition": content_disposition(found.name),
        # The type is ours (sniffed), and no browser may second-guess it or run what it got.
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox",
        "Cache-Control": "private, max-age=3600",
    }
    if how.size is not None:
        headers["Content-Length"] = str(how.size)
    return StreamingResponse(how.chunks, media_type=found.content_type, headers=headers)


routes = [
    Route("/api/uploads", upload, methods=["POST"]),
    Route("/api/uploads/{upload_id:id}", download, methods=["GET"]),
]

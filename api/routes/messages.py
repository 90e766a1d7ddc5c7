"""Sending, read marks and sync: parse -> the same use cases as the MQTT ops -> serialise
(reading history is api/routes/history.py).

A send is JSON (the `send` op's fields), or multipart/form-data: a `file` part (streamed into
storage like `POST /api/uploads`) and optional text parts `body`, `client_msg_id`, `type`,
`reply_to`; the message is an image (a sniffed image/* file) or a file, or the `type` given
(video, audio), with its content built from the upload. A refused send leaves no upload behind.
"""

from __future__ import annotations

import secrets

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from actions import messaging, reading
from actions.uploads import discard_upload
from api.auth import authenticate, state_of
from api.envelope import ok
from api.routes.uploads import is_multipart, receive_file
from api.schemas import ReadBody, SendBody, SendFormFields, parse_body
from contract.commands import MessageContent
from contract.content import MEDIA_TYPES, type_name
from contract.errors import ContentInvalidError, MqimError
from contract.http import SendResult
from contract.uploads import UploadView
from contract.validation import validate
from models.message import draft_of


def _http_msg_id() -> str:
    return f"http-{secrets.token_hex(8)}"


async def send(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    thread_id = request.path_params["thread_id"]
    if is_multipart(request):
        result = await _send_file(request, caller.user_id, thread_id)
    else:
        body = await parse_body(request, SendBody)
        draft = draft_of(body, caller.user_id, thread_id, body.client_msg_id or _http_msg_id())
        result = await messaging.send_message(state_of(request).ctx, draft)
    return ok(result, status=200 if result.duplicate else 201)


def _file_message(view: UploadView, fields: SendFormFields) -> MessageContent:
    """The message a multipart send makes of its upload and text parts."""
    image = view.content_type.startswith("image/")
    if fields.type is None:
        type_ = "image" if image else "file"
    else:
        type_ = type_name(int(fields.type) if fields.type.isdigit() else fields.type)
        if type_ not in MEDIA_TYPES:
            raise ContentInvalidError(f"type: a file is sent as one of {', '.join(MEDIA_TYPES)}")
        if type_ == "image" and not image:
            raise ContentInvalidError("type: the file is not an image")
    return MessageContent(type=type_, body=fields.body, reply_to=fields.reply_to,
                          content={"upload_id": view.upload_id})


async def _send_file(request: Request, user_id: str, thread_id: str) -> SendResult:
    ctx = state_of(request).ctx
    view, part = await receive_file(request, user_id)
    try:
        fields = validate(SendFormFields, await part.finish())
        message = _file_message(view, fields)
        draft = draft_of(message, user_id, thread_id, fields.client_msg_id or _http_msg_id())
        result = await messaging.send_message(ctx, draft)
    except MqimError:
        await discard_upload(ctx.storage, view.upload_id)
        raise
    if result.duplicate:  # a retry: the first attempt's message keeps its own file
        await discard_upload(ctx.storage, view.upload_id)
    return result


async def read(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    body = await parse_body(request, ReadBody)
    return ok(await reading.mark_read(state_of(request).ctx, caller.user_id,
                                      request.path_params["thread_id"], body.seq))


async def sync(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    return ok(await reading.thread_counts(caller.user_id))


routes = [
    Route("/api/threads/{thread_id:id}/messages", send, methods=["POST"]),
    Route("/api/threads/{thread_id:id}/read", read, methods=["POST"]),
    Route("/api/sync", sync, methods=["GET"]),
]

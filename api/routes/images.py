"""Images set by upload (docs/messages.md): `PUT /api/me/avatar`, `PUT /api/threads/{id}/image`.

The multipart `file` is stored like any upload (api/routes/uploads.receive_file), must sniff as
an image (4003 otherwise), and is then set through the same use case as `PATCH /api/me` /
`PATCH /api/threads/{id}` (same rules, same events). The URL set is absolute (those fields take
http(s) URLs), built from the request's base URL; models/upload.may_read_upload lets any signed-in
user fetch a user's current avatar and a thread's members fetch its image. A refused request
leaves no upload behind.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from actions import accounts, governance
from actions.context import Context
from actions.uploads import discard_upload
from api.auth import authenticate, state_of
from api.envelope import ok
from api.routes.uploads import receive_file
from contract.errors import ContentInvalidError, MqimError
from contract.uploads import UploadView


async def _image(request: Request, ctx: Context, user_id: str) -> tuple[UploadView, str]:
    """The stored image and its URL (a path on this server); 4003 (and nothing kept) if it is no
    image."""
    view, _ = await receive_file(request, user_id)
    if not view.content_type.startswith("image/"):
        await discard_upload(ctx.storage, view.upload_id)
        raise ContentInvalidError("file: must be an image (PNG, JPEG, GIF, WebP, ...)")
    return view, view.url


async def set_avatar(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    ctx = state_of(request).ctx
    view, url = await _image(request, ctx, caller.user_id)
    try:
        profile = await accounts.change_profile(ctx, caller.user_id, caller.session_id,
                                                {"avatar_url": url}, current_password=None,
                                                code=None)
    except MqimError:
        await discard_upload(ctx.storage, view.upload_id)
        raise
    return ok(profile)


async def set_thread_image(request: Request) -> JSONResponse:
    caller = await authenticate(request)
    ctx = state_of(request).ctx
    view, url = await _image(request, ctx, caller.user_id)
    try:
        updated = await governance.update_thread(ctx, caller.user_id,
                                                 request.path_params["thread_id"],
                                                 {"image_url": url}, None)
    except MqimError:
        await discard_upload(ctx.storage, view.upload_id)
        raise
    return ok(updated)


routes = [
    Route("/api/me/avatar", set_avatar, methods=["PUT"]),
    Route("/api/threads/{thread_id:id}/image", set_thread_image, methods=["PUT"]),
]

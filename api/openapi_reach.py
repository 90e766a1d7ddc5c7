"""The OpenAPI rows of the routes that reach users and programs: push targets (docs/push.md),
webhooks (docs/webhooks.md) and bots (docs/bots.md). Merged into api/openapi_routes.OPERATIONS."""

from __future__ import annotations

from api.openapi_ops import Op, Query, limit_query
from api.routes.bots import BotSignInBody, CreateBotBody
from contract import accounts as acc
from contract import bots as bo
from contract import push as pu
from contract import webhooks as wh
from contract.errors import (
    AccountBannedError,
    ForbiddenError,
    InvalidParameterError,
    NotFoundError,
    TokenInvalidError,
    UserExistsError,
)

REACH_OPERATIONS: dict[tuple[str, str], Op] = {

    # outgoing webhooks (docs/webhooks.md)
    ("POST", "/api/webhooks"): Op(
        "Create a webhook: a bot hook (`bot_id`, a bot the caller owns) or a server hook "
        "(server admins); answers its signing secret, shown only here",
        body=wh.CreateWebhookBody, data=wh.WebhookCreated, statuses=(201,),
        errors=(InvalidParameterError, ForbiddenError, NotFoundError)),
    ("GET", "/api/webhooks"): Op(
        "The caller's webhooks (and every server hook, for an admin)",
        data=list[wh.WebhookView]),
    ("DELETE", "/api/webhooks/{hook_id:num}"): Op(
        "Delete a webhook and its deliveries (its owner or an admin)",
        data=wh.WebhookDeleted, errors=(NotFoundError,)),
    ("GET", "/api/webhooks/{hook_id:num}/deliveries"): Op(
        "A webhook's deliveries, newest first", data=list[wh.DeliveryView],
        query=(Query("status", wh.DeliveryStatusName, "only deliveries in this status"),
               limit_query(wh.DELIVERIES_LIMIT_DEFAULT, wh.DELIVERIES_LIMIT_MAX)),
        errors=(InvalidParameterError, NotFoundError)),
    ("POST", "/api/webhooks/{hook_id:num}/replay"): Op(
        "Put a webhook's failed deliveries back in its queue, from their first attempt",
        data=wh.ReplayResult, errors=(NotFoundError,)),

    # push notifications (docs/push.md)
    ("POST", "/api/me/push-targets"): Op(
        "Register (or renew: same endpoint) a push target of the caller's session: web push, "
        "UnifiedPush or a Matrix push gateway; at most 10 per session",
        body=pu.PushTargetBody, data=pu.PushTargetInfo, statuses=(201,),
        errors=(InvalidParameterError,)),
    ("GET", "/api/me/push-targets"): Op(
        "The caller's push targets, of every live session, with their delivery state",
        data=list[pu.PushTargetInfo]),
    ("DELETE", "/api/me/push-targets/{target_id:num}"): Op(
        "Delete one of the caller's push targets", data=None, errors=(NotFoundError,)),
    ("GET", "/api/push/vapid-public-key"): Op(
        "The server's VAPID public key, for PushManager.subscribe's applicationServerKey",
        auth="none", data=pu.VapidPublicKey),

    # bots (docs/bots.md)
    ("POST", "/api/bots"): Op(
        "Create a bot account owned by the caller (at most 20): its profile and its first API "
        "token, shown only here", body=CreateBotBody, data=bo.BotCreated, statuses=(201,),
        errors=(InvalidParameterError, UserExistsError, ForbiddenError)),
    ("GET", "/api/bots"): Op(
        "The caller's bots, each with its tokens' prefixes and times", data=list[bo.BotView]),
    ("POST", "/api/bots/{bot_id:id}/token"): Op(
        "Issue a new API token for a bot; the older ones are revoked and its sessions ended",
        data=bo.BotTokenIssued, errors=(NotFoundError,)),
    ("DELETE", "/api/bots/{bot_id:id}/token"): Op(
        "Revoke every API token of a bot and end its sessions", data=bo.BotTokensRevoked,
        errors=(NotFoundError,)),
    ("DELETE", "/api/bots/{bot_id:id}"): Op(
        "Delete a bot's account (every session ended)", data=acc.AccountDeleted,
        errors=(NotFoundError,)),
    ("POST", "/api/auth/bot"): Op(
        "Sign a bot in with its API token: the same answer as a login (platform \"bot\")",
        "none", BotSignInBody, acc.SignedIn, errors=(TokenInvalidError, AccountBannedError)),
}

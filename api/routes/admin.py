"""Admin routes: ban/unban users, the extra broker ACL rules, a user's effective ACL."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from api.acl_view import effective_acl
from api.auth import Caller, authenticate, state_of
from api.envelope import ok
from api.events import kick
from api.schemas import RuleBody, parse_body
from broker.acl import ExtraRule
from broker.errors import BrokerError
from contract.errors import ForbiddenError, InvalidParameterError
from models.aclrule import add_rule, delete_rule, list_rules
from models.session import EndReason, set_banned
from models.user import get_user

logger = logging.getLogger(__name__)


async def require_admin(request: Request) -> Caller:
    caller = await authenticate(request)
    if not (await get_user(caller.user_id)).is_admin:
        raise ForbiddenError("admins only")
    return caller


async def ban(request: Request) -> JSONResponse:
    caller = await require_admin(request)
    user_id = request.path_params["user_id"]
    if user_id == caller.user_id:
        raise InvalidParameterError("admins cannot ban themselves")
    state = state_of(request)
    ended = await set_banned(user_id, True)
    await kick(state, user_id, [session.id for session in ended], EndReason.BANNED)
    await _tell_broker_ban(request, user_id, True)
    return ok({"user_id": user_id, "banned": True, "sessions_ended": len(ended)})


async def unban(request: Request) -> JSONResponse:
    await require_admin(request)
    user_id = request.path_params["user_id"]
    await set_banned(user_id, False)
    await _tell_broker_ban(request, user_id, False)
    return ok({"user_id": user_id, "banned": False})


async def _tell_broker_ban(request: Request, user_id: str, banned: bool) -> None:
    try:
        await state_of(request).access.user_banned(user_id, banned)
    except BrokerError as exc:
        logger.error("ban of %s stored, but the broker was not told: %s", user_id, exc)


async def rules(request: Request) -> JSONResponse:
    await require_admin(request)
    return ok([r.public() for r in await list_rules()])


async def _rules_changed(request: Request) -> None:
    current = [ExtraRule(r.topic, r.access.value, r.user_id) for r in await list_rules()]
    try:
        await state_of(request).access.rules_changed(current)
    except BrokerError as exc:
        logger.error("ACL rules stored, but the broker was not told: %s", exc)


async def add(request: Request) -> JSONResponse:
    caller = await require_admin(request)
    body = await parse_body(request, RuleBody)
    rule = await add_rule(topic=body.topic, access=body.access, user_id=body.user_id,
                          created_by=caller.user_id, prefix=state_of(request).scheme.prefix)
    await _rules_changed(request)
    return ok(rule.public(), status=201)


async def remove(request: Request) -> JSONResponse:
    await require_admin(request)
    rule_id: int = request.path_params["rule_id"]
    await delete_rule(rule_id)
    await _rules_changed(request)
    return ok({"id": rule_id, "deleted": True})


async def user_acl(request: Request) -> JSONResponse:
    await require_admin(request)
    user_id = request.path_params["user_id"]
    _ = await get_user(user_id)  # 2006 for an unknown user rather than an empty list
    return ok(await effective_acl(user_id, state_of(request).scheme))


routes = [
    Route("/api/admin/users/{user_id:id}/ban", ban, methods=["POST"]),
    Route("/api/admin/users/{user_id:id}/ban", unban, methods=["DELETE"]),
    Route("/api/admin/users/{user_id:id}/acl", user_acl, methods=["GET"]),
    Route("/api/admin/acl/rules", rules, methods=["GET"]),
    Route("/api/admin/acl/rules", add, methods=["POST"]),
    # `{rule_id:int}`: any other id matches no route, so it is a 404 like a missing rule.
    Route("/api/admin/acl/rules/{rule_id:num}", remove, methods=["DELETE"]),
]

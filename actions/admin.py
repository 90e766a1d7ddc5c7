"""Administration: banning users, the extra broker ACL rules, and a user's effective ACL.

    check_admin(user_id)                      ForbiddenError unless an admin
    ban(ctx, admin_id, user_id)   -> BanResult   (every session kicked, the broker told)
    unban(ctx, user_id)           -> BanStatus
    rules() / add_rule(...) / remove_rule(...)   (the broker gets the new rule set)
    user_acl(topics, user_id)     -> [AclLine]   (also `mqim acl show`)

Callers check `check_admin` first (the HTTP routes do, before reading a body). Telling the broker
is best effort after the commit: a failure is logged, and `mqim acl sync` repairs Mosquitto.
"""

from __future__ import annotations

from actions.context import Context
from actions.sessions import kick
from broker.acl import ExtraRule, filter_covers, touches_tree
from contract.accounts import AclLine, AclRuleView, BanResult, BanStatus, RuleDeleted
from contract.errors import ForbiddenError, InvalidParameterError
from contract.topics import TopicScheme
from models.account import set_banned
from models.aclrule import AclRule, acl_of, add_rule, delete_rule, list_rules
from models.session import EndReason
from models.user import get_user


async def check_admin(user_id: str) -> None:
    if not (await get_user(user_id)).is_admin:
        raise ForbiddenError("admins only")


async def ban(ctx: Context, admin_id: str, user_id: str) -> BanResult:
    if user_id == admin_id:
        raise InvalidParameterError("admins cannot ban themselves")
    ended = await set_banned(user_id, True)
    await kick(ctx, user_id, [session.id for session in ended], EndReason.BANNED)
    await _tell_broker_ban(ctx, user_id, True)
    return BanResult(user_id=user_id, banned=True, sessions_ended=len(ended))


async def unban(ctx: Context, user_id: str) -> BanStatus:
    await set_banned(user_id, False)
    await _tell_broker_ban(ctx, user_id, False)
    return BanStatus(user_id=user_id, banned=False)


async def _tell_broker_ban(ctx: Context, user_id: str, banned: bool) -> None:
    await ctx.tell_broker(ctx.access.user_banned(user_id, banned), f"ban of {user_id} stored")


def _rule_view(rule: AclRule) -> AclRuleView:
    return AclRuleView(id=rule.id, topic=rule.topic, access=rule.access.value,
                       user_id=rule.user_id, created_by=rule.created_by,
                       created_at=rule.created_at.isoformat())


async def rules() -> list[AclRuleView]:
    return [_rule_view(r) for r in await list_rules()]


async def add(ctx: Context, admin_id: str, *, topic: str, access: str,
              user_id: str | None) -> AclRuleView:
    rule = await add_rule(topic=topic, access=access, user_id=user_id, created_by=admin_id,
                          prefix=ctx.topics.prefix)
    await _rules_changed(ctx)
    return _rule_view(rule)


async def remove(ctx: Context, rule_id: int) -> RuleDeleted:
    await delete_rule(rule_id)
    await _rules_changed(ctx)
    return RuleDeleted(id=rule_id, deleted=True)


async def _rules_changed(ctx: Context) -> None:
    """The whole rule set, as committed, to the broker."""
    current = [ExtraRule(r.topic, r.access.value, r.user_id) for r in await list_rules()]
    await ctx.tell_broker(ctx.access.rules_changed(current), "ACL rules stored")


async def user_acl(topics: TopicScheme, user_id: str) -> list[AclLine]:
    """What `user_id` may do on the broker: own topics, one line per thread membership, then
    the extra rules that apply. UserNotFoundError (2006) for an unknown user, not an empty
    list."""
    _ = await get_user(user_id)
    acl = await acl_of(user_id)
    return [
        AclLine(topic=topics.uplink(user_id), access="write", source="own uplink"),
        AclLine(topic=topics.user(user_id), access="read", source="own personal topic"),
        *(AclLine(topic=topics.thread(tid), access="read", source="member")
          for tid in acl.thread_ids),
        *(_rule_line(r, user_id, topics.prefix) for r in acl.rules),
    ]


def _rule_line(rule: AclRule, user_id: str, prefix: str) -> AclLine:
    """An extra rule as it applies to this user: with `%u` expanded, and saying what the
    broker refuses of it (nothing in the mqim tree), so `%u/#` for a user `im` shows as void."""
    topic = rule.topic.replace("%u", user_id)
    source = f"rule {rule.id}" + (" (everyone)" if rule.user_id is None else "")
    if filter_covers(f"{prefix}/#", topic):
        return AclLine(topic=topic, access="none",
                       source=f"{source}; void: inside the {prefix}/ tree")
    if touches_tree(topic, prefix):
        source = f"{source}; except inside the {prefix}/ tree"
    return AclLine(topic=topic, access=rule.access.value, source=source)

"""Extra broker ACL rules that admins add on top of the fixed topic rules.

A rule grants `access` on a topic filter, where `%u` stands for the connecting user's id, to one
user or to everyone (`user_id` NULL). Example: let every device publish telemetry on
`devices/%u/#`. Rules only ever add access, and never inside the mqim topic tree, whose access
follows the fixed rules (own topics, thread membership).

`acl_of` gathers what a user's effective ACL is made of (their threads, the rules that apply to
them); how it is listed is the use cases' business.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import cast

from tortoise import fields
from tortoise.expressions import Q
from tortoise.models import Model

from contract.errors import InvalidParameterError, NotFoundError
from models.thread import Member
from models.user import check_users_exist


class RuleAccess(StrEnum):
    READ = "read"
    WRITE = "write"
    READWRITE = "readwrite"


class AclRule(Model):
    id = fields.BigIntField(primary_key=True)
    topic = fields.CharField(max_length=256)
    access = fields.CharEnumField(RuleAccess, max_length=9)
    # NULL: the rule applies to every user.
    user_id = fields.CharField(max_length=64, null=True, db_index=True)
    created_by = fields.CharField(max_length=64, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "acl_rule"


def check_rule_topic(topic: str, prefix: str) -> None:
    """A rule topic is a valid MQTT filter outside the mqim tree and `$` topics."""
    levels = topic.split("/")
    if not topic or len(topic) > 256 or "\0" in topic or topic.startswith("$"):
        raise InvalidParameterError("topic must be a non-empty MQTT filter, not a $ topic")
    for i, level in enumerate(levels):
        if ("#" in level and (level != "#" or i != len(levels) - 1)) or (
            "+" in level and level != "+"
        ):
            raise InvalidParameterError(f"topic {topic!r} is not a valid MQTT filter")
    if _overlaps_tree(levels, prefix.split("/")):
        raise InvalidParameterError(
            f"rules may not cover the {prefix}/ tree; its access follows thread membership"
        )


def _overlaps_tree(levels: list[str], prefix_levels: list[str]) -> bool:
    """Whether the filter could match `prefix` or a topic under it (the prefix may have several
    levels, so comparing the first level alone is not enough). `%u` is taken literally here: what
    it expands to is checked by the broker on every access (`broker.acl.ExtraRule.grants`)."""
    for i, wanted in enumerate(prefix_levels):
        if i >= len(levels):
            return False
        if levels[i] == "#":
            return True
        if levels[i] not in ("+", wanted):
            return False
    return True


async def add_rule(
    *, topic: str, access: str, user_id: str | None, created_by: str, prefix: str
) -> AclRule:
    check_rule_topic(topic, prefix)
    try:
        kind = RuleAccess(access)
    except ValueError as exc:
        raise InvalidParameterError("access must be read, write or readwrite") from exc
    if user_id is not None:
        await check_users_exist([user_id])
    return await AclRule.create(topic=topic, access=kind, user_id=user_id, created_by=created_by)


async def delete_rule(rule_id: int) -> None:
    if not await AclRule.filter(id=rule_id).delete():
        raise NotFoundError(f"ACL rule {rule_id} not found")


async def list_rules(user_id: str | None = None) -> list[AclRule]:
    query = AclRule.all()
    if user_id is not None:
        query = query.filter(Q(user_id=user_id) | Q(user_id=None))
    return list(await query.order_by("id"))


@dataclass(frozen=True)
class UserAcl:
    """What grants a user broker access besides their own topics."""

    thread_ids: list[str]  # the threads they are a member of, by id
    rules: list[AclRule]  # the extra rules that apply to them (theirs and everyone's)


async def acl_of(user_id: str) -> UserAcl:
    threads = cast(list[str], await Member.filter(user_id=user_id).order_by("thread_id")
                   .values_list("thread_id", flat=True))
    return UserAcl([str(t) for t in threads], await list_rules(user_id))

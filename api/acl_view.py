"""A user's effective broker ACL, listed for admins (`GET /api/admin/users/{id}/acl`, `mqim acl
show`): the fixed rules of DESIGN.md section 3, one line per thread membership, and extra rules."""

from __future__ import annotations

from typing import Any

from broker.acl import filter_covers, touches_tree
from contract.topics import TopicScheme
from models.aclrule import AclRule, list_rules
from models.thread import Member


def _rule_line(rule: AclRule, user_id: str, prefix: str) -> dict[str, Any]:
    """An extra rule as it applies to this user: with `%u` expanded, and saying what the
    broker refuses of it (nothing in the mqim tree), so `%u/#` for a user `im` shows as void."""
    topic = rule.topic.replace("%u", user_id)
    access = rule.access.value
    source = f"rule {rule.id}" + (" (everyone)" if rule.user_id is None else "")
    if filter_covers(f"{prefix}/#", topic):
        access, source = "none", f"{source}; void: inside the {prefix}/ tree"
    elif touches_tree(topic, prefix):
        source = f"{source}; except inside the {prefix}/ tree"
    return {"topic": topic, "access": access, "source": source}


async def effective_acl(user_id: str, scheme: TopicScheme) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = [
        {"topic": scheme.uplink(user_id), "access": "write", "source": "own uplink"},
        {"topic": scheme.user(user_id), "access": "read", "source": "own personal topic"},
    ]
    threads = await Member.filter(user_id=user_id).order_by("thread_id").values_list(
        "thread_id", flat=True
    )
    lines += [
        {"topic": scheme.thread(str(tid)), "access": "read", "source": "member"}
        for tid in threads
    ]
    lines += [_rule_line(r, user_id, scheme.prefix) for r in await list_rules(user_id)]
    return lines

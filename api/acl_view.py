"""A user's effective broker ACL, listed for admins (`GET /api/admin/users/{id}/acl`, `mqim acl
show`): the fixed rules of DESIGN.md section 3, one line per thread membership, and extra rules."""

from __future__ import annotations

from typing import Any

from broker.topics import TopicScheme
from models.aclrule import list_rules
from models.thread import Member


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
    lines += [
        {"topic": r.topic.replace("%u", user_id), "access": r.access.value,
         "source": f"rule {r.id}" + (" (everyone)" if r.user_id is None else "")}
        for r in await list_rules(user_id)
    ]
    return lines

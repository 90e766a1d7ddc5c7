"""Pushing the whole access state from the database to Mosquitto's plugin.

A restarted Mosquitto's plugin starts empty and "not ready" (it turns user logins away), so
every bridge worker checks after it (re)connects and syncs when the plugin is not ready; a ready
plugin is left alone, so workers never wipe each other's syncs. `mqim acl sync` forces one.
The plugin is reset *before* the database is read: changes that commit meanwhile are sent live
and win over the sync's older data, so none is lost.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence

from broker.acl import ExtraRule
from broker.mosquitto.control import MosquittoControl
from config import Settings
from models.clock import utcnow
from models.session import recently_ended_sessions
from models.thread import all_receivers
from models.user import User
from mqim.directory import load_rules

logger = logging.getLogger(__name__)


async def sync_mosquitto(
    control: MosquittoControl, settings: Settings, *, force: bool = False
) -> dict[str, int] | None:
    """Replace the plugin's state with the database's, unless it is ready and not `force`.

    Returns what was sent (for logs), or None when nothing was needed.
    """
    if not force and (await control.status()).get("ready"):
        return None
    await control.reset()
    memberships: defaultdict[str, list[str]] = defaultdict(list)
    for thread_id, user_id in await all_receivers():
        memberships[thread_id].append(user_id)
    rules: Sequence[ExtraRule] = await load_rules()
    now = int(utcnow().timestamp())
    ended = [
        (s.user_id, s.id, now + settings.access_token_ttl)
        for s in await recently_ended_sessions(settings.access_token_ttl)
    ]
    banned = [str(u) for u in await User.exclude(banned_at=None).values_list("id", flat=True)]
    await control.sync(memberships, rules, ended, banned, reset=False)
    counts = {"threads": len(memberships), "memberships": sum(map(len, memberships.values())),
              "rules": len(rules), "ended_sessions": len(ended), "banned": len(banned)}
    logger.info("broker ACL synced: %s", counts)
    return counts

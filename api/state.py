"""What the API's handlers share, kept in lifespan state (no module globals)."""

from __future__ import annotations

from dataclasses import dataclass

from actions.context import Context
from api.mailer import Mailer
from broker.acl import Directory


@dataclass(frozen=True)
class ApiState:
    # What the use cases in actions/ are called with (settings, publisher, access, topics, limits).
    ctx: Context
    # Answers the broker auth hooks (credentials, membership).
    directory: Directory
    # Sends verification codes (SMTP, or the log in development).
    mailer: Mailer

"""What the API's handlers share, kept in lifespan state (no module globals)."""

from __future__ import annotations

from dataclasses import dataclass

from api.mailer import Mailer
from broker.acl import AccessSync, Directory
from broker.link.publisher import EventPublisher
from config import Settings
from contract.topics import TopicScheme
from models.ratelimit import RateLimits


@dataclass(frozen=True)
class ApiState:
    settings: Settings
    publisher: EventPublisher
    access: AccessSync
    scheme: TopicScheme
    # Answers the broker auth hooks (credentials, membership).
    directory: Directory
    # Sends verification codes (SMTP, or the log in development).
    mailer: Mailer
    # Abuse limits: logins, registrations, verification codes (models/ratelimit.py).
    limits: RateLimits

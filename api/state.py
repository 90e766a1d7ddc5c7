"""What the API's handlers share, kept in lifespan state (no module globals)."""

from __future__ import annotations

from dataclasses import dataclass

from actions.context import Context
from api.mailer import Mailer
from broker.acl import AccessSync, Directory
from broker.link.publisher import EventPublisher
from config import Settings
from contract.topics import TopicScheme
from models.ratelimit import RateLimits


@dataclass(frozen=True)
class ApiState:
    # What the use cases in actions/ are called with.
    ctx: Context
    # Answers the broker auth hooks (credentials, membership).
    directory: Directory
    # Sends verification codes (SMTP, or the log in development).
    mailer: Mailer

    @property
    def settings(self) -> Settings:
        return self.ctx.settings

    @property
    def publisher(self) -> EventPublisher:
        return self.ctx.publisher

    @property
    def access(self) -> AccessSync:
        return self.ctx.access

    @property
    def scheme(self) -> TopicScheme:
        return self.ctx.topics

    @property
    def limits(self) -> RateLimits:
        return self.ctx.limits

"""Sending mail (verification codes): the `Mailer` interface and its two forms.

`SmtpMailer` hands each mail to an SMTP server with aiosmtplib (production: `MQIM_SMTP_URL`).
`LogMailer`, the embedded default when no SMTP URL is set, sends nothing: it logs the mail,
code included, at WARNING, marked as a development stand-in. `build_mailer(settings)` picks one.
Mail is plain text; templates, queues and retries are deliberately not here: a failed send is
reported to the client (MailFailedError, 1008), which asks again.
"""

from __future__ import annotations

import logging
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Protocol

import aiosmtplib

from config import Settings
from config.settings import SmtpUrl
from contract.errors import MailFailedError

logger = logging.getLogger(__name__)

SMTP_TIMEOUT = 15.0


class Mailer(Protocol):
    async def send(self, to: str, subject: str, text: str) -> None:
        """Deliver one plain-text mail to the server; MailFailedError if it was not accepted."""
        ...


class LogMailer:
    """Development stand-in: writes each mail to the log instead of sending it."""

    async def send(self, to: str, subject: str, text: str) -> None:
        logger.warning(
            "DEV MAILER, nothing sent (set MQIM_SMTP_URL to send mail): to=%s subject=%r "
            "text=%r", to, subject, text,
        )


class SmtpMailer:
    """Sends each mail over a fresh SMTP connection (codes are rare; no pool to keep alive)."""

    def __init__(self, server: SmtpUrl, sender: str, *, timeout: float = SMTP_TIMEOUT) -> None:
        self._server = server
        self._sender = sender
        self._timeout = timeout

    async def send(self, to: str, subject: str, text: str) -> None:
        message = EmailMessage()
        message["From"] = self._sender
        message["To"] = to
        message["Subject"] = subject
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(domain=self._sender.rpartition("@")[2] or None)
        message.set_content(text)
        server = self._server
        try:
            _ = await aiosmtplib.send(
                message, hostname=server.host, port=server.port,
                username=server.username or None, password=server.password or None,
                use_tls=server.use_tls, start_tls=server.start_tls, timeout=self._timeout,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            logger.warning("mail to %s not sent through %s: %s", to, server, exc)
            raise MailFailedError(
                "the verification mail could not be sent; check the address and try again"
            ) from exc


def build_mailer(settings: Settings) -> Mailer:
    server = settings.smtp()
    if server is None:
        logger.warning("MQIM_SMTP_URL is not set: verification codes are logged, not mailed "
                       "(development only)")
        return LogMailer()
    return SmtpMailer(server, settings.mail_from)

"""Email verification codes: `POST /api/auth/verify-code`, the code's rules (hash only, 10 min,
5 tries, single use, superseded by a newer one, rate-limited), and how register and
`PATCH /api/me` use them.

Codes are read where a user would find them: from the stack's log on the default stack (its
LogMailer, the embedded default), and from a real SMTP server (aiosmtpd, in this process) on the
`strict` stack, which also requires codes (`MQIM_REQUIRE_EMAIL_CODE`).
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import AsyncIterator, Iterator
from email import message_from_bytes
from email.message import Message
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from api.mailer import LogMailer, SmtpMailer
from config import ConfigError, Settings, load_settings
from config.settings import parse_smtp_url
from contract.errors import MailFailedError
from tests.api.test_accounts import assert_error
from tests.helpers import free_port, register, unique_id
from tests.stacks import Stack, running_stack

SMTP_USER, SMTP_PASSWORD = "mqim-mail", "mail-secret-1"
REFUSED = "refused"  # an address local part the test SMTP server refuses at RCPT


def fresh_email() -> str:
    return f"{unique_id('e')}@example.com"


async def poll(find: Any, what: str, timeout: float = 10.0) -> Any:  # noqa: ASYNC109
    """`find()` until it returns something, with a deadline (polling a file or a mailbox)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        found = find()
        if found:
            return found
        if loop.time() > deadline:
            raise AssertionError(f"no {what} within {timeout} s")
        await asyncio.sleep(0.02)  # polling, not synchronising: `find` decides


def codes_in_log(stack: Stack, email: str) -> list[str]:
    text = stack.log_path.read_text(encoding="utf-8", errors="replace")
    pattern = re.compile(rf"DEV MAILER.*to={re.escape(email)} .*?code is (\d{{6}})")
    return pattern.findall(text)


async def logged_code(stack: Stack, email: str, nth: int = 1) -> str:
    """The `nth` code the stack's LogMailer logged for `email`."""
    codes = await poll(lambda: (c := codes_in_log(stack, email)) and len(c) >= nth and c,
                       f"code #{nth} for {email} in {stack.log_path}")
    return str(codes[nth - 1])


async def request_code(http: httpx.AsyncClient, email: str, purpose: str = "register",
                       **headers: str) -> httpx.Response:
    return await http.post("/api/auth/verify-code", json={"email": email, "purpose": purpose},
                           headers=headers)


# A real SMTP server in this process (aiosmtpd runs its own loop in a thread).


class Mailbox:
    """aiosmtpd handler: accepts mail for anyone but `refused@...`, and keeps it."""

    def __init__(self) -> None:
        self.messages: list[tuple[Envelope, Message]] = []
        self.logins: list[str] = []
        self._lock = threading.Lock()

    async def handle_RCPT(  # noqa: N802  # aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str,
        rcpt_options: list[str],
    ) -> str:
        if address.startswith(f"{REFUSED}@"):
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802  # aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        assert isinstance(envelope.content, bytes)
        with self._lock:
            self.messages.append((envelope, message_from_bytes(envelope.content)))
        return "250 Message accepted for delivery"

    def authenticate(self, server: SMTP, session: Session, envelope: Envelope,
                     mechanism: str, auth_data: Any) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            SMTP_USER.encode(), SMTP_PASSWORD.encode())
        if ok:
            with self._lock:
                self.logins.append(SMTP_USER)
        return AuthResult(success=ok, handled=False)  # let aiosmtpd answer 235 or 535

    def to(self, email: str) -> list[Message]:
        with self._lock:
            return [m for e, m in self.messages if email in e.rcpt_tos]

    async def code(self, email: str, nth: int = 1) -> str:
        mails = await poll(lambda: (m := self.to(email)) and len(m) >= nth and m,
                           f"mail #{nth} to {email}")
        body = mails[nth - 1].get_payload(decode=True).decode()
        match = re.search(r"code is (\d{6})", body)
        assert match, body
        return match.group(1)


@pytest.fixture(scope="module")
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port,
                            authenticator=box.authenticate, auth_require_tls=False)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


@pytest.fixture(scope="module", params=["embedded", "mosquitto"])
async def strict(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
    mailbox: tuple[Mailbox, int],
) -> AsyncIterator[Stack]:
    """A stack that requires codes, mails them over SMTP, and lets codes follow each other."""
    _, port = mailbox
    async with running_stack(
        request.param, tmp_path_factory.mktemp(f"strict-{request.param}"),
        require_email_code=True, email_code_interval=0, mail_from="mqim@example.com",
        smtp_url=f"smtp://{SMTP_USER}:{SMTP_PASSWORD}@127.0.0.1:{port}?starttls=0",
    ) as stack:
        yield stack


@pytest.fixture
async def strict_http(strict: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://{strict.settings.http}", timeout=10) as client:
        yield client


# The default stack: LogMailer, codes optional, one code a minute per address.


async def test_code_is_logged_never_returned_and_verifies_the_email(
    server: Stack, http: httpx.AsyncClient
) -> None:
    email = fresh_email()
    response = await request_code(http, email.upper())
    assert response.status_code == 200, response.text
    assert response.json()["data"] == {"email": email, "purpose": "register", "expires_in": 600,
                                       "resend_after": 60}
    code = await logged_code(server, email)
    assert code not in response.text
    assert "DEV MAILER" in server.log_path.read_text(encoding="utf-8")
    account = await register(http, email=email, code=code)
    me = (await http.get("/api/me", headers=account.auth)).json()["data"]
    assert me["email"] == email
    assert me["email_verified_at"] is not None


async def test_register_without_code_leaves_the_email_unverified(
    http: httpx.AsyncClient,
) -> None:
    account = await register(http, email=fresh_email())
    me = (await http.get("/api/me", headers=account.auth)).json()["data"]
    assert me["email_verified_at"] is None


async def test_second_code_within_a_minute_is_rate_limited(
    server: Stack, http: httpx.AsyncClient
) -> None:
    email = fresh_email()
    assert (await request_code(http, email)).status_code == 200
    for purpose in ("register", "restore"):  # per address, whatever the purpose
        limited = await request_code(http, email, purpose)
        assert_error(limited, 429, 1006, "rate_limited")
        assert "try again in" in limited.json()["msg"]
    assert len(codes_in_log(server, email)) == 1
    assert (await request_code(http, fresh_email())).status_code == 200  # others are not


@pytest.mark.parametrize(
    "body",
    [{"email": "not-an-email", "purpose": "register"},  # seed: "Invalid email"
     {"email": "a@b", "purpose": "register"},
     {"email": "x@example.com", "purpose": "login"},
     {"email": "x@example.com"},
     {"purpose": "register"},
     {"email": 5, "purpose": "register"}],
)
async def test_code_request_with_bad_input_is_refused(
    http: httpx.AsyncClient, body: dict[str, object]
) -> None:
    assert_error(await http.post("/api/auth/verify-code", json=body), 400, 1001,
                 "invalid_parameter")


async def test_code_for_an_email_in_use_is_refused(http: httpx.AsyncClient) -> None:
    email = fresh_email()
    await register(http, email=email)
    assert_error(await request_code(http, email, "register"), 409, 2007, "user_exists")
    assert_error(await request_code(http, email, "change_email"), 409, 2007, "user_exists")


async def test_wrong_codes_count_and_five_wear_the_code_out(
    server: Stack, http: httpx.AsyncClient
) -> None:
    email = fresh_email()
    assert (await request_code(http, email)).status_code == 200
    code = await logged_code(server, email)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    body = {"user_id": unique_id(), "name": "x", "password": "pass-word-1", "email": email}
    for left in (4, 3, 2, 1):
        response = await http.post("/api/auth/register", json={**body, "code": wrong})
        assert_error(response, 400, 2010, "code_invalid")
        assert f"{left} attempt(s) left" in response.json()["msg"]
    assert_error(await http.post("/api/auth/register", json={**body, "code": wrong}),
                 400, 2010, "code_invalid")
    worn_out = await http.post("/api/auth/register", json={**body, "code": code})
    assert_error(worn_out, 400, 2010, "code_invalid")
    assert "too many" in worn_out.json()["msg"]


async def test_code_is_single_use_and_bound_to_its_purpose(
    server: Stack, http: httpx.AsyncClient
) -> None:
    account = await register(http)
    email = fresh_email()
    assert (await request_code(http, email, "change_email")).status_code == 200
    code = await logged_code(server, email)
    # A change_email code does not register anyone.
    assert_error(await http.post("/api/auth/register", json={
        "name": "x", "password": "pass-word-1", "email": email, "code": code}),
        400, 2010, "code_invalid")
    change = {"email": email, "current_password": account.password, "code": code}
    changed = await http.patch("/api/me", headers=account.auth, json=change)
    assert changed.status_code == 200, changed.text
    assert changed.json()["data"]["email_verified_at"] is not None
    cleared = await http.patch("/api/me", headers=account.auth,
                               json={"email": None, "current_password": account.password})
    assert cleared.json()["data"]["email"] is None
    assert_error(await http.patch("/api/me", headers=account.auth, json=change),
                 400, 2010, "code_invalid")


async def test_register_with_a_code_but_no_request_is_refused(http: httpx.AsyncClient) -> None:
    assert_error(await http.post("/api/auth/register", json={
        "name": "x", "password": "pass-word-1", "email": fresh_email(), "code": "123456"}),
        400, 2010, "code_invalid")


# The strict stack: SMTP, codes required, no rate limit.


async def test_codes_arrive_by_smtp_from_the_configured_sender(
    strict_http: httpx.AsyncClient, mailbox: tuple[Mailbox, int]
) -> None:
    box, _ = mailbox
    email = fresh_email()
    response = await request_code(strict_http, email)
    assert response.status_code == 200, response.text
    code = await box.code(email)
    assert code not in response.text
    [mail] = box.to(email)
    assert (mail["From"], mail["To"]) == ("mqim@example.com", email)
    assert mail["Subject"] == "Your mqim verification code"
    assert SMTP_USER in box.logins  # the URL's credentials were used
    registered = await strict_http.post("/api/auth/register", json={
        "name": "x", "password": "pass-word-1", "email": email, "code": code})
    assert registered.status_code == 201, registered.text
    assert registered.json()["data"]["user"]["email_verified_at"] is not None


async def test_strict_register_with_email_needs_a_code(strict_http: httpx.AsyncClient) -> None:
    response = await strict_http.post("/api/auth/register", json={
        "name": "x", "password": "pass-word-1", "email": fresh_email()})
    assert_error(response, 400, 1001, "invalid_parameter")
    assert "verify-code" in response.json()["msg"]
    # Without an email there is nothing to verify.
    assert (await strict_http.post("/api/auth/register", json={
        "name": "x", "password": "pass-word-1"})).status_code == 201


async def test_newer_code_supersedes_the_older(
    strict_http: httpx.AsyncClient, mailbox: tuple[Mailbox, int]
) -> None:
    box, _ = mailbox
    email = fresh_email()
    assert (await request_code(strict_http, email)).status_code == 200
    first = await box.code(email)
    assert (await request_code(strict_http, email)).status_code == 200
    second = await box.code(email, nth=2)
    body = {"name": "x", "password": "pass-word-1", "email": email}
    if first != second:
        assert_error(await strict_http.post("/api/auth/register", json={**body, "code": first}),
                     400, 2010, "code_invalid")
    assert (await strict_http.post("/api/auth/register", json={
        **body, "code": second})).status_code == 201


async def test_strict_email_change_needs_a_code_for_the_new_address(
    strict_http: httpx.AsyncClient, mailbox: tuple[Mailbox, int]
) -> None:
    box, _ = mailbox
    account = await register(strict_http)
    email = fresh_email()
    change = {"email": email, "current_password": account.password}
    missing = await strict_http.patch("/api/me", headers=account.auth, json=change)
    assert_error(missing, 400, 1001, "invalid_parameter")
    assert "change_email" in missing.json()["msg"]
    assert (await request_code(strict_http, email, "change_email")).status_code == 200
    code = await box.code(email)
    changed = await strict_http.patch("/api/me", headers=account.auth,
                                      json={**change, "code": code})
    assert changed.status_code == 200, changed.text
    assert changed.json()["data"]["email"] == email
    assert changed.json()["data"]["email_verified_at"] is not None


async def test_refused_mail_is_a_502_and_can_be_retried_at_once(
    strict: Stack, strict_http: httpx.AsyncClient
) -> None:
    email = f"{REFUSED}@example.com"
    for _ in range(2):  # the failed code was discarded: no rate limit, no stale code
        assert_error(await request_code(strict_http, email), 502, 1008, "mail_failed")
    assert f"mail to {email} not sent" in strict.log_path.read_text(encoding="utf-8")


# The mailers themselves, and their settings.


async def test_smtp_mailer_reports_refusals_and_unreachable_servers(
    mailbox: tuple[Mailbox, int],
) -> None:
    box, port = mailbox
    url = f"smtp://{SMTP_USER}:{SMTP_PASSWORD}@127.0.0.1:{port}?starttls=0"
    mailer = SmtpMailer(parse_smtp_url(url), "mqim@example.com")
    email = fresh_email()
    await mailer.send(email, "hello", "Your mqim verification code is 000111\n")
    assert await box.code(email) == "000111"
    with pytest.raises(MailFailedError):
        await mailer.send(f"{REFUSED}@example.com", "hello", "text")
    bad_login = parse_smtp_url(f"smtp://{SMTP_USER}:wrong@127.0.0.1:{port}?starttls=0")
    with pytest.raises(MailFailedError):
        await SmtpMailer(bad_login, "mqim@example.com").send(email, "hello", "text")
    nobody = parse_smtp_url(f"smtp://127.0.0.1:{free_port()}?starttls=0")
    with pytest.raises(MailFailedError):
        await SmtpMailer(nobody, "mqim@example.com", timeout=5).send(email, "hello", "text")


async def test_log_mailer_marks_itself_as_development(caplog: pytest.LogCaptureFixture) -> None:
    await LogMailer().send("a@example.com", "subject", "Your mqim verification code is 123456")
    [record] = [r for r in caplog.records if r.name == "api.mailer"]
    assert record.levelname == "WARNING"
    assert "DEV MAILER" in record.getMessage()
    assert "123456" in record.getMessage()


@pytest.mark.parametrize(
    ("url", "expected"),
    [("smtp://u:p%40ss@mail.example.com:587?starttls=1",
      ("mail.example.com", 587, "u", "p@ss", False, True)),
     ("smtp://mail.example.com", ("mail.example.com", 587, "", "", False, None)),
     ("smtp://mail.example.com:25?starttls=0", ("mail.example.com", 25, "", "", False, False)),
     ("smtps://u:p@mail.example.com", ("mail.example.com", 465, "u", "p", True, None))],
)
def test_smtp_url_is_parsed(url: str, expected: tuple[object, ...]) -> None:
    parsed = parse_smtp_url(url)
    assert (parsed.host, parsed.port, parsed.username, parsed.password, parsed.use_tls,
            parsed.start_tls) == expected


def test_smtp_url_never_shows_its_password() -> None:
    assert str(parse_smtp_url("smtp://u:hunter2@h?starttls=1")) == "smtp://u@h:587"


@pytest.mark.parametrize(
    "values",
    [{"smtp_url": "http://mail.example.com"}, {"smtp_url": "smtps://h?starttls=1"},
     {"smtp_url": "smtp://h?verify=0"}, {"smtp_url": "smtp://h", "mail_from": ""},
     {"smtp_url": "smtp://h", "mail_from": "not an address"},
     {"email_code_interval": -1}, {"restore_window_days": -1}],
)
def test_bad_mail_settings_are_refused(values: dict[str, Any]) -> None:
    settings = Settings(jwt_secret="x" * 40, **{"mail_from": "mqim@example.com", **values})
    with pytest.raises(ConfigError, match="MQIM_"):
        settings.check()


def test_mail_settings_come_from_the_environment() -> None:
    settings = load_settings({"MQIM_SMTP_URL": "smtps://h", "MQIM_MAIL_FROM": "a@example.com",
                              "MQIM_REQUIRE_EMAIL_CODE": "true", "MQIM_EMAIL_CODE_INTERVAL": "5",
                              "MQIM_RESTORE_WINDOW_DAYS": "7"})
    assert (settings.smtp_url, settings.mail_from, settings.require_email_code,
            settings.email_code_interval, settings.restore_window_days) == (
        "smtps://h", "a@example.com", True, 5, 7)
    assert load_settings({}).require_email_code is False
    with pytest.raises(ConfigError, match="MQIM_REQUIRE_EMAIL_CODE"):
        load_settings({"MQIM_REQUIRE_EMAIL_CODE": "maybe"})

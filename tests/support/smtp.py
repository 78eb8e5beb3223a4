"""A real SMTP server on loopback (aiosmtpd, in its own thread) that keeps what it receives.

Tests wait for messages on a condition, never by sleeping; `respond` scripts the answers to
DATA (e.g. a transient 451 before a 250) so retries can be watched."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass(frozen=True)
class Received:
    """One message as the server took it: the envelope and the parsed message."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if self.server.requires_auth and not session.authenticated:
            return "530 5.7.0 Authentication required"
        refusal = self.server.refused_recipients.get(address.lower())
        if refusal is not None:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return self.server._take(envelope)


class SmtpServer:
    """aiosmtpd on 127.0.0.1 at a free port; `messages` in the order received. With
    `credentials` (user, password) it requires AUTH (over plain text: loopback only)."""

    def __init__(self, credentials: tuple[str, str] | None = None) -> None:
        self.host = "127.0.0.1"
        self.port = free_port()
        self.received: list[Received] = []
        self.refused_recipients: dict[str, str] = {}
        self._script: list[str] = []
        self._answers = 0
        self._changed = threading.Condition()
        self.logins: list[str] = []
        self._credentials = credentials
        auth: dict[str, Any] = {}
        if credentials is not None:
            # AUTH over plain text on loopback; required by handle_RCPT (aiosmtpd's own
            # auth_required warns on every connection without TLS).
            auth = {"authenticator": self._authenticate, "auth_require_tls": False}
        self._controller = Controller(_Handler(self), hostname=self.host, port=self.port, **auth)

    @property
    def requires_auth(self) -> bool:
        return self._credentials is not None

    def start(self) -> SmtpServer:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def respond(self, answers: Iterable[str | int]) -> None:
        """The next answers to DATA, in order ("451 4.3.0 Try later", 550, ...); a bare code
        gets a text; "250 OK" once the script is used up."""
        with self._changed:
            self._script = [a if isinstance(a, str) else f"{a} Scripted answer" for a in answers]

    def refuse(self, address: str, answer: str = "550 5.1.1 No such user") -> None:
        """RCPT TO `address` is answered `answer`."""
        self.refused_recipients[address.lower()] = answer

    @property
    def messages(self) -> list[EmailMessage]:
        with self._changed:
            return [r.message for r in self.received]

    @property
    def answers(self) -> int:
        """DATA commands answered so far, accepted or not."""
        with self._changed:
            return self._answers

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        if not isinstance(data, LoginPassword) or self._credentials is None:
            return AuthResult(success=False, handled=False)
        login, password = data.login.decode(), data.password.decode()
        ok = (login, password) == self._credentials
        if ok:
            with self._changed:
                self.logins.append(login)
        return AuthResult(success=ok, handled=False)

    def _take(self, envelope: Any) -> str:
        with self._changed:
            self._answers += 1
            answer = self._script.pop(0) if self._script else "250 OK"
            if answer.startswith("250"):
                parsed = BytesParser(policy=policy.default).parsebytes(envelope.content)
                assert isinstance(parsed, EmailMessage)
                self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), parsed))
            self._changed.notify_all()
            return answer

    def _wait(self, count: int, timeout: float) -> list[EmailMessage]:
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.received) >= count, timeout):
                raise TimeoutError(
                    f"{len(self.received)} of {count} messages arrived in {timeout}s"
                )
            return [r.message for r in self.received]

    async def wait_for(self, count: int, timeout: float = 10) -> list[EmailMessage]:
        """Every message received, once there are at least `count`; TimeoutError otherwise."""
        return await asyncio.to_thread(self._wait, count, timeout)

"""EMAIL deliveries: one message through the configured SMTP server (aiosmtplib), the summary
as its text and the snapshot and CSVs as attachments."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate

import aiosmtplib

from tilegraph.settings import Settings

from .errors import SendFailed
from .messages import DeliveryMessage, summary_text

NO_SERVER = "No SMTP server is configured (TILEGRAPH_SMTP_HOST)"


@dataclass(frozen=True)
class MailSettings:
    host: str
    port: int
    username: str
    password: str
    sender: str
    starttls: bool

    @classmethod
    def of(cls, settings: Settings) -> MailSettings:
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password,
            sender=settings.smtp_from,
            starttls=settings.smtp_starttls,
        )


def _header(text: str) -> str:
    """A header value on one line (user text never adds headers)."""
    return " ".join(text.split())


def subject_of(message: DeliveryMessage) -> str:
    name, delivery = _header(message.dashboard_name), _header(message.delivery_name)
    prefix = "Alert: " if message.condition is not None else ""
    if delivery and delivery != name:
        return f"{prefix}{name} — {delivery}"
    return f"{prefix}{name}"


def build_email(sender: str, to: list[str], message: DeliveryMessage) -> EmailMessage:
    """The MIME message: text/plain summary, then each attachment with its own type. Its
    Message-ID is the run's, so a retry of the same run is recognisably the same mail."""
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = ", ".join(to)
    mail["Subject"] = subject_of(message)
    mail["Date"] = formatdate(localtime=False, usegmt=True)
    domain = sender.rsplit("@", 1)[-1] or "tilegraph"
    mail["Message-ID"] = f"<{_header(message.run_id).replace(' ', '')}@{domain}>"
    mail["X-Tilegraph-Delivery"] = _header(message.delivery_id)
    mail.set_content(summary_text(message))
    for attachment in message.attachments:
        kind, *options = (part.strip() for part in attachment.content_type.split(";"))
        maintype, _, subtype = kind.lower().partition("/")
        params = dict(option.partition("=")[::2] for option in options if "=" in option)
        if maintype == "text":
            # Our snapshots and CSVs are UTF-8; said so, a client decodes them as written.
            params.setdefault("charset", "utf-8")
        mail.add_attachment(
            attachment.data,
            maintype=maintype or "application",
            subtype=subtype or "octet-stream",
            filename=_header(attachment.filename),
            params=params,
        )
    return mail


def _response_failure(code: int, text: str, what: str = "") -> SendFailed:
    suffix = f" ({what})" if what else ""
    # 4xx is a transient refusal (try later), 5xx a permanent one.
    return SendFailed(f"SMTP {code} {_header(text)}{suffix}"[:300], retryable=400 <= code < 500)


async def send_email(
    mail: MailSettings, to: list[str], message: DeliveryMessage, *, timeout_seconds: float
) -> None:
    """Hand the message to the SMTP server for every address in `to`; SendFailed with the
    server's code and text otherwise. Addresses the server refuses while it accepts others
    do not fail the send (the others have the mail; a retry would send it twice)."""
    if not mail.host:
        raise SendFailed(NO_SERVER, retryable=False)
    if not to:
        raise SendFailed("No recipients", retryable=False)
    mime = build_email(mail.sender, to, message)
    try:
        async with asyncio.timeout(timeout_seconds):
            await aiosmtplib.send(
                mime,
                sender=mail.sender,
                recipients=to,
                hostname=mail.host,
                port=mail.port,
                username=mail.username or None,
                password=mail.password or None,
                start_tls=mail.starttls,
                timeout=timeout_seconds,
            )
    except aiosmtplib.SMTPRecipientsRefused as exc:
        refused = exc.recipients
        transient = [r for r in refused if 400 <= r.code < 500]
        first = (transient or refused)[0]
        raise _response_failure(first.code, first.message, first.recipient) from None
    except aiosmtplib.SMTPSenderRefused as exc:
        raise _response_failure(exc.code, exc.message, exc.sender) from None
    except aiosmtplib.SMTPResponseException as exc:
        raise _response_failure(exc.code, exc.message) from None
    except aiosmtplib.SMTPNotSupported as exc:
        # e.g. STARTTLS required but not offered: the configuration has to change.
        raise SendFailed(f"SMTP: {_header(exc.message)}", retryable=False) from None
    except (TimeoutError, aiosmtplib.SMTPTimeoutError):
        raise SendFailed(f"SMTP {mail.host}:{mail.port} timed out", retryable=True) from None
    except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPConnectError, OSError) as exc:
        raise SendFailed(
            f"SMTP {mail.host}:{mail.port}: {_header(str(exc)) or type(exc).__name__}",
            retryable=True,
        ) from None
    except aiosmtplib.SMTPException as exc:
        # The server lacks what the settings ask for (STARTTLS, AUTH): no retry changes that.
        raise SendFailed(f"SMTP: {_header(exc.message)}", retryable=False) from None

"""One attempt to hand a delivery's message to its channel, with the send-time target check
and the pinned addresses wired in, so a caller cannot send to a URL it did not just check."""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from tilegraph.settings import Settings

from .email import MailSettings, send_email
from .errors import SendFailed
from .http_post import post_slack, post_webhook
from .messages import DeliveryMessage, slack_body, webhook_body
from .targets import check_target


async def deliver(
    channel: str,
    recipients: Sequence[str],
    message: DeliveryMessage,
    *,
    settings: Settings,
    client: httpx.AsyncClient,
    secret: str | None = None,
) -> None:
    """Send `message` once: EMAIL to every recipient; WEBHOOK (signed with `secret`, the
    run id as Idempotency-Key) or SLACK to the one URL, checked right before the POST and
    posted to the addresses checked. Raises TargetNotAllowed (never retry) or SendFailed
    (retry when `retryable`, with the same message: the key stays the run id)."""
    timeout = settings.delivery_send_timeout_seconds
    if channel == "EMAIL":
        await send_email(
            MailSettings.of(settings), list(recipients), message, timeout_seconds=timeout
        )
        return
    if channel not in ("WEBHOOK", "SLACK") or len(recipients) != 1:
        raise SendFailed(f"A {channel} delivery needs exactly one URL", retryable=False)
    url = recipients[0]
    target = await check_target(
        url, allowed_hosts=settings.delivery_allowed_hosts, dev=settings.is_dev
    )
    if channel == "WEBHOOK":
        await post_webhook(
            client,
            url,
            webhook_body(message),
            secret=secret,
            idempotency_key=message.run_id,
            timeout_seconds=timeout,
            connect_to=target.addresses,
        )
    else:
        await post_slack(
            client, url, slack_body(message), timeout_seconds=timeout, connect_to=target.addresses
        )

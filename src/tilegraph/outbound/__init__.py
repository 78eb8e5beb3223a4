"""What a delivery run hands to the outside world: email over SMTP, webhook and Slack POSTs,
the checks each target passes right before a send, and the messages and HTML snapshot sent.

It imports only the domain and settings; the worker job builds a `DeliveryMessage` and calls
`deliver` (the target check and the channel's sender in one attempt), retrying a `SendFailed`
whose `retryable` is true."""

from .deliver import deliver
from .email import MailSettings, send_email
from .errors import SendFailed
from .http_post import new_client, post_slack, post_webhook
from .messages import (
    Attachment,
    CardSummary,
    DeliveryMessage,
    slack_body,
    summary_text,
    webhook_body,
)
from .snapshot import build_snapshot
from .targets import Target, TargetNotAllowed, check_target

__all__ = [
    "Attachment",
    "CardSummary",
    "DeliveryMessage",
    "MailSettings",
    "SendFailed",
    "Target",
    "TargetNotAllowed",
    "build_snapshot",
    "check_target",
    "deliver",
    "new_client",
    "post_slack",
    "post_webhook",
    "send_email",
    "slack_body",
    "summary_text",
    "webhook_body",
]

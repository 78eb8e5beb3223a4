"""What one delivery run sends, and how each channel shows it: plain text for email, a JSON
document for webhooks, Slack's block format for Slack."""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass, field
from typing import Any

import orjson

OPERATORS = {"GT": ">", "GTE": "≥", "LT": "<", "LTE": "≤", "EQ": "=", "NE": "≠"}
# Slack refuses a message with more than 50 blocks, a header over 150 characters and a
# section over 3,000.
_SLACK_MAX_CARDS = 45
_SLACK_HEADER = 150
_SLACK_SECTION = 3000


@dataclass(frozen=True)
class CardSummary:
    card_id: str
    title: str
    # name → number (HTMLResult(metrics=...)); None when the card returned none.
    metrics: dict[str, float] | None = None


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str  # "text/html", "text/csv"
    data: bytes


@dataclass(frozen=True)
class DeliveryMessage:
    delivery_id: str
    delivery_name: str
    dashboard_id: str
    dashboard_name: str
    dashboard_url: str
    run_id: str
    triggered_by: str  # SCHEDULE | MANUAL
    due_at: str | None  # ISO 8601, None for a manual run
    cards: list[CardSummary] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    # An alert's condition when it held: {"metric", "operator", "threshold", "value"}.
    condition: dict[str, Any] | None = None


def format_number(value: float) -> str:
    """1,234 / 0.4567 / 1.2e+12: readable, with no float noise."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:,.6g}"


def condition_text(condition: dict[str, Any]) -> str:
    """The condition as a sentence: revenue is 1,200 (alert: > 1,000)."""
    operator = str(condition.get("operator", ""))
    symbol = OPERATORS.get(operator, operator)
    value = condition.get("value")
    shown = format_number(value) if isinstance(value, int | float) else "unknown"
    threshold = condition.get("threshold")
    limit = format_number(threshold) if isinstance(threshold, int | float) else str(threshold)
    return f"{condition.get('metric', '?')} is {shown} (alert: {symbol} {limit})"


def _metric_lines(metrics: dict[str, float] | None) -> list[str]:
    return [f"{name}: {format_number(value)}" for name, value in (metrics or {}).items()]


def summary_text(m: DeliveryMessage) -> str:
    """The plain-text message: the dashboard, each card's metrics, the link."""
    lines = [m.dashboard_name, "=" * min(len(m.dashboard_name), 72), ""]
    if m.delivery_name and m.delivery_name != m.dashboard_name:
        lines += [f"Delivery: {m.delivery_name}"]
    lines += [f"Run: {m.due_at or 'manual'}", ""]
    if m.condition is not None:
        lines += [f"Alert: {condition_text(m.condition)}", ""]
    for card in m.cards:
        lines.append(card.title)
        metric_lines = _metric_lines(card.metrics)
        lines += [f"  {line}" for line in metric_lines] or ["  (no metrics)"]
        lines.append("")
    if m.attachments:
        lines += ["Attached: " + ", ".join(a.filename for a in m.attachments), ""]
    lines.append(f"Open the dashboard: {m.dashboard_url}")
    return "\n".join(lines) + "\n"


def _metrics_json(metrics: dict[str, float] | None) -> dict[str, float | None] | None:
    if metrics is None:
        return None
    return {k: (v if math.isfinite(v) else None) for k, v in metrics.items()}


def webhook_body(m: DeliveryMessage) -> bytes:
    """The JSON a webhook receives; the bytes signed by X-Tilegraph-Signature."""
    document = {
        "delivery": {"id": m.delivery_id, "name": m.delivery_name},
        "dashboard": {"id": m.dashboard_id, "name": m.dashboard_name, "url": m.dashboard_url},
        "run": {"id": m.run_id, "triggeredBy": m.triggered_by, "dueAt": m.due_at},
        "cards": [
            {"id": c.card_id, "title": c.title, "metrics": _metrics_json(c.metrics)}
            for c in m.cards
        ],
        "condition": m.condition,
        "attachments": [
            {
                "filename": a.filename,
                "contentType": a.content_type,
                "contentBase64": base64.b64encode(a.data).decode("ascii"),
            }
            for a in m.attachments
        ],
    }
    return orjson.dumps(document)


def _mrkdwn(text: str) -> str:
    """Text shown as itself in Slack (its control characters are &, < and >)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def slack_body(m: DeliveryMessage) -> bytes:
    """A Slack incoming-webhook message: a text fallback and blocks (a header, a section per
    card with its metrics, the link). Files are not sent to Slack; they are named."""
    url = m.dashboard_url.replace(">", "%3E").replace("|", "%7C")
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": _cut(m.dashboard_name, _SLACK_HEADER)},
        }
    ]
    if m.condition is not None:
        blocks.append(
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": f":rotating_light: *{_mrkdwn(condition_text(m.condition))}*",
                },
            }
        )
    for card in m.cards[:_SLACK_MAX_CARDS]:
        metric_lines = [
            f"• {_mrkdwn(name)}: *{format_number(value)}*"
            for name, value in (card.metrics or {}).items()
        ]
        text = "\n".join([f"*{_mrkdwn(card.title)}*", *(metric_lines or ["_no metrics_"])])
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": _cut(text, _SLACK_SECTION)}}
        )
    hidden = len(m.cards) - _SLACK_MAX_CARDS
    context = [f"<{url}|Open the dashboard>"]
    if hidden > 0:
        context.append(f"and {hidden} more cards")
    if m.attachments:
        names = ", ".join(_mrkdwn(a.filename) for a in m.attachments)
        context.append(f"Files not sent to Slack: {names}")
    context.append(_mrkdwn(f"{m.delivery_name} · {m.due_at or 'manual run'}"))
    blocks.append(
        {
            "type": "context",
            "elements": [
                {"type": "mrkdwn", "text": _cut(part, _SLACK_SECTION)} for part in context
            ],
        }
    )
    fallback = f"{m.dashboard_name}: " + "; ".join(
        f"{card.title}: " + ", ".join(_metric_lines(card.metrics))
        for card in m.cards
        if card.metrics
    )
    fallback = _cut(_mrkdwn(fallback.rstrip(": ")), _SLACK_SECTION - 200) + f" <{url}|Open>"
    return orjson.dumps({"text": fallback, "blocks": blocks})

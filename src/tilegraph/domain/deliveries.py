"""Deliveries (a dashboard sent to a channel on a schedule, as its owner sees it), alerts
(a condition on one card's metric), their runs, and the rules they follow."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from tilegraph.domain.errors import BadUserInput
from tilegraph.domain.executions import ExecutionError, ExecutionErrorCode, ExecutionStatus
from tilegraph.domain.filters import ColumnFilter, FilterType
from tilegraph.domain.transforms import TriggerType

# Tries to hand one message to its channel, and the first wait between two (it doubles).
MAX_DELIVERY_ATTEMPTS = 3
MAX_DELIVERY_CARDS = 50


class DeliveryChannel(StrEnum):
    EMAIL = "EMAIL"
    WEBHOOK = "WEBHOOK"
    SLACK = "SLACK"


class DeliveryContent(StrEnum):
    SUMMARY = "SUMMARY"
    HTML_SNAPSHOT = "HTML_SNAPSHOT"
    CSV = "CSV"


class ComparisonOperator(StrEnum):
    GT = "GT"
    GTE = "GTE"
    LT = "LT"
    LTE = "LTE"
    EQ = "EQ"
    NE = "NE"


@dataclass(frozen=True)
class AlertCondition:
    card_id: str
    metric: str
    operator: ComparisonOperator
    threshold: float

    def holds(self, value: float) -> bool:
        return {
            ComparisonOperator.GT: value > self.threshold,
            ComparisonOperator.GTE: value >= self.threshold,
            ComparisonOperator.LT: value < self.threshold,
            ComparisonOperator.LTE: value <= self.threshold,
            ComparisonOperator.EQ: value == self.threshold,
            ComparisonOperator.NE: value != self.threshold,
        }[self.operator]

    def to_item(self) -> dict[str, Any]:
        return {
            "card_id": self.card_id,
            "metric": self.metric,
            "operator": self.operator.value,
            "threshold": str(self.threshold),
        }

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> AlertCondition:
        return cls(
            str(item["card_id"]),
            str(item["metric"]),
            ComparisonOperator(item["operator"]),
            float(item["threshold"]),
        )


@dataclass(frozen=True)
class DeliveryRecord:
    id: str
    owner_id: str
    dashboard_id: str
    name: str
    card_ids: tuple[str, ...]
    schedule_cron: str
    enabled: bool
    channel: DeliveryChannel
    recipients: tuple[str, ...]
    contents: tuple[DeliveryContent, ...]
    created_at: datetime
    updated_at: datetime
    filter_view_id: str | None = None
    condition: AlertCondition | None = None
    # The HMAC key of WEBHOOK deliveries: shown once, at creation.
    signing_secret: str | None = None
    next_run_at: datetime | None = None
    running_execution_id: str | None = None
    version: int = 1

    def with_changes(self, **changes: Any) -> DeliveryRecord:
        return replace(self, **changes)

    def cards_to_run(self, dashboard_cards: Iterable[str]) -> list[str]:
        """The chosen cards (all of the dashboard's when none were chosen) plus the
        condition's, in dashboard order, each once."""
        ordered = list(dict.fromkeys(dashboard_cards))
        chosen = set(self.card_ids) if self.card_ids else set(ordered)
        if self.condition is not None:
            chosen.add(self.condition.card_id)
        return [card_id for card_id in ordered if card_id in chosen]

    def sends_card(self, card_id: str) -> bool:
        """A card the condition alone needs is run but not sent."""
        return not self.card_ids or card_id in self.card_ids


@dataclass(frozen=True)
class DeliveryRunRecord:
    id: str
    delivery_id: str
    owner_id: str
    status: ExecutionStatus
    triggered_by: TriggerType
    queued_at: datetime
    started: str  # sort key among the delivery's runs: queued time + id
    triggered_by_user: str | None = None
    due_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    progress: float | None = None
    error: ExecutionError | None = None
    sent: bool = False
    condition_value: float | None = None
    attempts: int = 0


def check_contents(contents: Iterable[DeliveryContent]) -> tuple[DeliveryContent, ...]:
    checked = tuple(dict.fromkeys(contents))
    if not checked:
        raise BadUserInput("Choose at least one content", field="contents")
    return checked


def check_condition(condition: AlertCondition, dashboard_cards: Iterable[str]) -> AlertCondition:
    if condition.card_id not in set(dashboard_cards):
        raise BadUserInput("The condition's card is not on the dashboard", field="condition.cardId")
    metric = condition.metric.strip()
    if not metric or len(metric) > 200:
        raise BadUserInput("Name the metric (1 to 200 characters)", field="condition.metric")
    if not math.isfinite(condition.threshold):
        raise BadUserInput("The threshold must be a finite number", field="condition.threshold")
    return replace(condition, metric=metric)


def check_delivery_cards(card_ids: list[str], dashboard_cards: Iterable[str]) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(card_ids))
    if len(chosen) > MAX_DELIVERY_CARDS:
        raise BadUserInput(f"Choose at most {MAX_DELIVERY_CARDS} cards", field="cardIds")
    placed = set(dashboard_cards)
    missing = [c for c in chosen if c not in placed]
    if missing:
        raise BadUserInput(f"Card {missing[0]} is not on the dashboard", field="cardIds")
    return chosen


def view_filters(definitions: Iterable[Any], state: Mapping[str, Any]) -> list[ColumnFilter]:
    """A saved filter view as the column filters of a run: a string or a list of strings
    for a CATEGORY filter, {start, end} for a range; empty values filter nothing."""
    filters = []
    for definition in definitions:
        value = state.get(definition.id)
        if value in (None, "", []):
            continue
        if definition.type is FilterType.CATEGORY:
            values = [value] if isinstance(value, str) else [str(v) for v in value]
            filters.append(ColumnFilter(definition.column, values=tuple(values)))
        elif isinstance(value, Mapping):
            start, end = value.get("start"), value.get("end")
            if start is None and end is None:
                continue
            filters.append(ColumnFilter(definition.column, start=start, end=end))
    return filters


def file_stem(name: str) -> str:
    """A name as a file name any mail client or chat keeps as it is."""
    stem = re.sub(r"[^\w.-]+", "-", name).strip("-.")
    return stem[:80] or "card"


def attachment_names(names: Iterable[str], extension: str) -> list[str]:
    """One file name per name, in order, none twice: two cards called "Sales" are sent as
    Sales.csv and Sales-2.csv, so a mail client does not show one file for both."""
    taken: set[str] = set()
    files = []
    for name in names:
        stem = file_stem(name)
        candidate, number = f"{stem}.{extension}", 1
        while candidate.lower() in taken:
            number += 1
            candidate = f"{stem}-{number}.{extension}"
        taken.add(candidate.lower())
        files.append(candidate)
    return files


def retry_delay(attempt: int, base_seconds: float) -> float:
    """The wait after the `attempt`-th failed try: base, 2 × base, 4 × base, ..."""
    return float(base_seconds * (2 ** (attempt - 1)))


def delivery_failed(attempts: int, answer: str) -> ExecutionError:
    tries = "try" if attempts == 1 else "tries"
    return ExecutionError(
        ExecutionErrorCode.DELIVERY_FAILED,
        f"Not delivered after {attempts} {tries}; the last answer: {answer}",
    )


def target_not_allowed(reason: str) -> ExecutionError:
    return ExecutionError(ExecutionErrorCode.TARGET_NOT_ALLOWED, reason)


def skipped_delivery_error(running_id: str) -> ExecutionError:
    return ExecutionError(
        ExecutionErrorCode.CANCELLED,
        f"Skipped: the previous run ({running_id}) of this delivery was still running",
    )

"""Cards and their runs."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from tilegraph.domain.card_outputs import Metrics, TableSummary
from tilegraph.domain.executions import ExecutionError, ExecutionStatus
from tilegraph.domain.runs import CardRunPlan

# A card reads at most this many datasets (the query cost estimate relies on it).
MAX_CARD_DATASETS = 10


class CardType(StrEnum):
    CODE = "CODE"
    TEXT = "TEXT"


@dataclass(frozen=True)
class CardRecord:
    id: str
    owner_id: str
    name: str
    description: str | None
    type: CardType
    code: str
    dataset_ids: tuple[str, ...]
    params: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    used_columns: tuple[str, ...] = ()
    filter_applicable: tuple[str, ...] = ()
    # The code the used columns were learned from; projection is only safe for that code.
    learned_from: str | None = None
    # The code for which a run projected to the learned columns failed and succeeded with
    # every column: that code reads columns it does not declare, so it is never projected.
    unprojected_for: str | None = None
    # Matches the object with its files in a workspace directory; unique per owner.
    workspace_key: str | None = None
    version: int = 1

    def with_changes(self, **changes: Any) -> CardRecord:
        return replace(self, **changes)


@dataclass(frozen=True)
class CardResultRecord:
    cache_key: str
    used_columns: tuple[str, ...]
    filter_applicable: tuple[str, ...]
    ignored_filters: tuple[str, ...]
    cached: bool
    execution_time_ms: float
    # The HTML itself, when the record came with it (a cache hit, or the terminal event of
    # a run); never stored with the execution record, whose HTML lives under `cache_key`.
    html: str | None = None
    # What render() returned besides the HTML: its metrics, and the summary of its table
    # (whose rows are stored under `cache_key` too).
    metrics: Metrics | None = None
    table: TableSummary | None = None

    def to_item(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "cache_key": self.cache_key,
            "used_columns": list(self.used_columns),
            "filter_applicable": list(self.filter_applicable),
            "ignored_filters": list(self.ignored_filters),
            "cached": self.cached,
            "execution_time_ms": self.execution_time_ms,
        }
        if self.metrics is not None:
            item["metrics"] = dict(self.metrics)
        if self.table is not None:
            item["table"] = self.table.to_item()
        return item

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> CardResultRecord:
        return cls(
            cache_key=str(item["cache_key"]),
            used_columns=tuple(item.get("used_columns", [])),
            filter_applicable=tuple(item.get("filter_applicable", [])),
            ignored_filters=tuple(item.get("ignored_filters", [])),
            cached=bool(item.get("cached", False)),
            execution_time_ms=float(item.get("execution_time_ms", 0.0)),
            html=item.get("html"),
            metrics=dict(item["metrics"]) if item.get("metrics") is not None else None,
            table=TableSummary.from_item(item["table"]) if item.get("table") else None,
        )

    def with_html(self, html: str | None) -> CardResultRecord:
        return replace(self, html=html)


@dataclass(frozen=True)
class CardExecutionRecord:
    """One run of a card, or of draft code when `card_id` is None (a preview)."""

    id: str
    owner_id: str
    status: ExecutionStatus
    queued_at: datetime
    dataset_ids: tuple[str, ...]
    card_id: str | None = None
    dashboard_id: str | None = None
    # What the worker executes; None for TEXT cards, which need no run.
    plan: CardRunPlan | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    progress: float | None = None
    result: CardResultRecord | None = None
    error: ExecutionError | None = None

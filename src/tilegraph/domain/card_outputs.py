"""What a card may return besides its HTML: named numbers (metrics) and one table.

The sandbox checks the same rules before it replies (executor/runner.py, which may not import
this package); the worker checks them again here, because the child's reply is untrusted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from enum import StrEnum
from typing import Any

MAX_METRICS = 100
MAX_METRIC_NAME_CHARS = 100
# DynamoDB numbers (the result record keeps the metrics) hold magnitudes in this range.
MAX_METRIC_MAGNITUDE = 1e125
MIN_METRIC_MAGNITUDE = 1e-130
MAX_METRIC_INT = 2**63 - 1

# The table's summary lives on the execution record, which must stay small.
MAX_TABLE_COLUMNS = 256
MAX_TABLE_COLUMN_NAME_BYTES = 4096

MAX_ROWS_LIMIT = 1000
# Excel's sheet holds 1,048,576 rows, the header included.
MAX_XLSX_ROWS = 1_048_575


class TableFormat(StrEnum):
    CSV = "CSV"
    XLSX = "XLSX"
    PARQUET = "PARQUET"


class CardOutputError(ValueError):
    """A card's metrics or table break a rule; the message says which and how."""


@dataclass(frozen=True)
class TableSummary:
    """What the execution record and the cache keep of a card's table; the rows are in S3."""

    columns: tuple[str, ...]
    row_count: int

    def to_item(self) -> dict[str, Any]:
        return {"columns": list(self.columns), "row_count": self.row_count}

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> TableSummary:
        return cls(tuple(str(c) for c in item.get("columns", [])), int(item.get("row_count", 0)))


Metrics = dict[str, int | float]


def check_metrics(value: object) -> Metrics | None:
    """The metrics as given, or CardOutputError naming the first bad one. None: no metrics."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise CardOutputError(
            f"HTMLResult.metrics must be a dict of name → number, not {type(value).__name__}"
        )
    if len(value) > MAX_METRICS:
        raise CardOutputError(
            f"HTMLResult.metrics has {len(value)} entries; at most {MAX_METRICS} are allowed"
        )
    checked: Metrics = {}
    for name, number in value.items():
        if not isinstance(name, str) or not name or len(name) > MAX_METRIC_NAME_CHARS:
            raise CardOutputError(
                f"Metric name {name!r} must be a non-empty string of at most "
                f"{MAX_METRIC_NAME_CHARS} characters"
            )
        checked[name] = check_metric_value(name, number)
    return checked


def check_metric_value(name: str, number: object) -> int | float:
    if isinstance(number, bool) or not isinstance(number, int | float):
        raise CardOutputError(
            f"Metric {name!r} must be a number (int or float), not {type(number).__name__}"
        )
    if isinstance(number, int):
        if abs(number) > MAX_METRIC_INT:
            raise CardOutputError(f"Metric {name!r} is too large for an integer (64 bits)")
        return int(number)
    if not math.isfinite(number):
        raise CardOutputError(f"Metric {name!r} must be a finite number, not {number!r}")
    magnitude = abs(number)
    if magnitude > MAX_METRIC_MAGNITUDE or (0 < magnitude < MIN_METRIC_MAGNITUDE):
        raise CardOutputError(
            f"Metric {name!r} is out of range: {number!r} (magnitudes from 1e-130 to 1e125, or 0)"
        )
    return float(number)


def check_table_columns(columns: list[str]) -> None:
    """Few and short enough column names for the execution record to carry them."""
    total = sum(len(c.encode()) for c in columns)
    if len(columns) > MAX_TABLE_COLUMNS or total > MAX_TABLE_COLUMN_NAME_BYTES:
        raise CardOutputError(
            f"HTMLResult.table has {len(columns)} columns whose names take {total} bytes; a "
            f"card's table may have at most {MAX_TABLE_COLUMNS} columns whose names take at "
            f"most {MAX_TABLE_COLUMN_NAME_BYTES} bytes together"
        )


def check_rows_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_ROWS_LIMIT:
        raise CardOutputError(f"limit must be between 1 and {MAX_ROWS_LIMIT}, got {limit}")
    return limit


def json_cell(value: Any) -> Any:
    """One table cell as JSON: numbers, strings, booleans, ISO dates and datetimes, null.
    NaN and infinities have no JSON form and become null."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value)


def spreadsheet_cell(value: Any) -> Any:
    """One cell as a spreadsheet holds it: no NaN, no time zones (UTC, as stored)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value

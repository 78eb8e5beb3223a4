"""What goes into the sandbox and what comes back: plain dataclasses, no behaviour."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from tilegraph.domain.executions import ExecutionError
from tilegraph.domain.filters import ColumnFilter, FilterEntry, filters_by_column


@dataclass(frozen=True)
class CardJob:
    """A card's code and its (already filtered) data. ``inputs[0]`` becomes ``dataset``."""

    code: str
    params: dict[str, Any] | None
    filters: list[dict[str, Any]] | list[ColumnFilter]
    inputs: list[pa.Table]
    # Where the card's HTML loads plotly.js from (our own server); None leaves it as written.
    plotly_src: str | None = None


@dataclass(frozen=True)
class TransformJob:
    """A transform's code and its inputs as (dataset id, table), in the order given."""

    code: str
    params: dict[str, Any] | None
    inputs: list[tuple[str, pa.Table]]


@dataclass(frozen=True)
class CardOutput:
    html: str
    used_columns: list[str]
    filter_applicable: list[str]
    metrics: dict[str, int | float] | None = None
    table: pa.Table | None = None


@dataclass(frozen=True)
class TransformOutput:
    table: pa.Table


@dataclass(frozen=True)
class SandboxResult:
    """Exactly one of ``output`` and ``error`` is set."""

    output: CardOutput | TransformOutput | None
    error: ExecutionError | None
    duration_ms: float  # time spent in the sandbox for this job (not waiting for a slot)
    peak_memory_bytes: int = 0  # the job's high-water mark, where its memory cap can tell

    @property
    def ok(self) -> bool:
        return self.error is None


def filters_to_wire(filters: list[dict[str, Any]] | list[ColumnFilter]) -> dict[str, FilterEntry]:
    """Cards receive filters keyed by column (``filters.get("region")``), as cards written for
    the system Tilegraph replaces expect; the plan holds them as the API's dicts."""
    return filters_by_column(
        f if isinstance(f, ColumnFilter) else ColumnFilter.from_item(f) for f in filters
    )

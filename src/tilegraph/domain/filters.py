"""Platform filters on one column, as cards receive them (DESIGN.md "Filters")."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class FilterType(StrEnum):
    CATEGORY = "CATEGORY"
    DATE_RANGE = "DATE_RANGE"
    NUMBER_RANGE = "NUMBER_RANGE"


@dataclass(frozen=True)
class ColumnFilter:
    """Keep rows whose `column` matches.

    CATEGORY: the value, as a string, is in `values`.
    Ranges: start <= value <= end, either bound optional; a DATE_RANGE end day is inclusive
    of the whole day. `include_null` keeps rows where the value is null.
    A filter with `values` is a CATEGORY filter; otherwise a range.
    """

    column: str
    values: tuple[str, ...] | None = None
    start: str | None = None
    end: str | None = None
    include_null: bool = False

    @property
    def is_category(self) -> bool:
        return self.values is not None

    def to_item(self) -> dict[str, object]:
        item: dict[str, object] = {"column": self.column, "includeNull": self.include_null}
        if self.values is not None:
            item["values"] = list(self.values)
        if self.start is not None:
            item["start"] = self.start
        if self.end is not None:
            item["end"] = self.end
        return item

    @classmethod
    def from_item(cls, item: dict[str, object]) -> ColumnFilter:
        values = item.get("values")
        start = item.get("start")
        end = item.get("end")
        return cls(
            column=str(item["column"]),
            values=tuple(str(v) for v in values) if isinstance(values, list) else None,
            start=str(start) if start is not None else None,
            end=str(end) if end is not None else None,
            include_null=bool(item.get("includeNull", False)),
        )


@dataclass(frozen=True)
class FilterReport:
    """What happened to each filter: applied, or ignored because the column is missing."""

    applied: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

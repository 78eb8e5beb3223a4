"""Platform filters on one column, as cards receive them (DESIGN.md "Filters")."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
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


class FilterKind(StrEnum):
    CATEGORY = "CATEGORY"
    NUMBER_RANGE = "NUMBER_RANGE"
    DATE_RANGE = "DATE_RANGE"
    TEXT_RANGE = "TEXT_RANGE"


@dataclass(frozen=True)
class ResolvedFilter:
    """A filter made concrete for one column type: bounds parsed, the whole end day
    included for dates. `upper_exclusive` marks a date end turned into "before next day"."""

    column: str
    kind: FilterKind
    include_null: bool
    values: tuple[str, ...] = ()
    lower: float | date | datetime | str | None = None
    upper: float | date | datetime | str | None = None
    upper_exclusive: bool = False


class FilterError(ValueError):
    """A bound that cannot be read for the column's type."""


NUMERIC_TYPES = {"INT64", "FLOAT64"}
DATE_TYPES = {"DATE", "DATETIME"}


def _number(text: str, column: str) -> float:
    try:
        return float(text)
    except ValueError as exc:
        raise FilterError(f"{text!r} is not a number (filter on {column})") from exc


def _moment(text: str, column: str, *, end: bool, column_type: str) -> tuple[date | datetime, bool]:
    """Parse a date or date-time bound; a bare end date covers the whole day."""
    cleaned = text.strip().replace("/", "-")
    try:
        if len(cleaned) <= 10:
            day = date.fromisoformat(cleaned)
            if column_type == "DATE":
                return day, False
            moment = datetime(day.year, day.month, day.day)
            if end:
                return moment + timedelta(days=1), True
            return moment, False
        moment = datetime.fromisoformat(cleaned.replace("Z", "+00:00"))
    except ValueError as exc:
        raise FilterError(f"{text!r} is not a date (filter on {column})") from exc
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    if column_type == "DATE":
        return moment.date(), False
    return moment, False


def resolve_filters(
    filters: list[ColumnFilter], column_types: dict[str, str]
) -> tuple[list[ResolvedFilter], list[str]]:
    """Concrete filters for the columns that exist, and the names of filters ignored
    because the dataset lacks their column. Raises FilterError for unreadable bounds."""
    resolved: list[ResolvedFilter] = []
    ignored: list[str] = []
    for flt in filters:
        column_type = column_types.get(flt.column)
        if column_type is None:
            ignored.append(flt.column)
            continue
        if flt.is_category:
            resolved.append(
                ResolvedFilter(
                    flt.column,
                    FilterKind.CATEGORY,
                    flt.include_null,
                    values=tuple(flt.values or ()),
                )
            )
            continue
        if column_type in NUMERIC_TYPES:
            resolved.append(
                ResolvedFilter(
                    flt.column,
                    FilterKind.NUMBER_RANGE,
                    flt.include_null,
                    lower=_number(flt.start, flt.column) if flt.start else None,
                    upper=_number(flt.end, flt.column) if flt.end else None,
                )
            )
        elif column_type in DATE_TYPES:
            lower = upper = None
            exclusive = False
            if flt.start:
                lower, _ = _moment(flt.start, flt.column, end=False, column_type=column_type)
            if flt.end:
                upper, exclusive = _moment(flt.end, flt.column, end=True, column_type=column_type)
            resolved.append(
                ResolvedFilter(
                    flt.column,
                    FilterKind.DATE_RANGE,
                    flt.include_null,
                    lower=lower,
                    upper=upper,
                    upper_exclusive=exclusive,
                )
            )
        else:
            resolved.append(
                ResolvedFilter(
                    flt.column,
                    FilterKind.TEXT_RANGE,
                    flt.include_null,
                    lower=flt.start or None,
                    upper=flt.end or None,
                )
            )
    return resolved, ignored


# What `render(dataset, filters, params)` finds under a column: the selected values of a
# CATEGORY filter, or the bounds of a range ({"start": ..., "end": ...}, either may be absent).
FilterEntry = list[str] | dict[str, str]


def filters_by_column(filters: Iterable[ColumnFilter]) -> dict[str, FilterEntry]:
    """The filters keyed by column, the shape existing cards read (`filters.get("region")`).

    Every filter is still applied to the data, so several on one column describe what they
    leave together: the CATEGORY values common to all of them, the tightest start and end of
    the ranges; when a column has both kinds, the CATEGORY values are what it holds.
    """
    by_column: dict[str, FilterEntry] = {}
    for flt in filters:
        current = by_column.get(flt.column)
        if flt.is_category:
            values = list(flt.values or ())
            if isinstance(current, list):
                chosen = set(values)
                values = [value for value in current if value in chosen]
            by_column[flt.column] = values
        elif not isinstance(current, list):
            by_column[flt.column] = _narrowed(current or {}, flt)
    return by_column


def _narrowed(bounds: dict[str, str], flt: ColumnFilter) -> dict[str, str]:
    narrowed = dict(bounds)
    if flt.start and ("start" not in narrowed or _before(narrowed["start"], flt.start, end=False)):
        narrowed["start"] = flt.start
    if flt.end and ("end" not in narrowed or _before(flt.end, narrowed["end"], end=True)):
        narrowed["end"] = flt.end
    return narrowed


def _before(first: str, second: str, *, end: bool) -> bool:
    """Whether bound `first` comes strictly before `second`: as numbers when both read as
    numbers, else as moments when both read as dates (a bare end date covers its whole day),
    else as text, the way the platform compares them for a column of that kind."""
    try:
        return float(first) < float(second)
    except ValueError:
        pass
    try:
        return _moment_bound(first, end=end) < _moment_bound(second, end=end)
    except FilterError:
        return first < second


def _moment_bound(text: str, *, end: bool) -> date | datetime:
    return _moment(text, "", end=end, column_type="DATETIME")[0]

"""Reading published dataset versions from S3 with pyarrow: previews read only the row
groups they need, column values read one column, and card inputs push filters and
column projection down to the Parquet scan. Blocking calls: run them in a thread."""

from __future__ import annotations

import operator
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from datetime import date, datetime
from functools import cached_property, reduce
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.fs as pafs

from tilegraph.domain.filters import FilterKind, ResolvedFilter
from tilegraph.domain.policies import RowCondition
from tilegraph.settings import Settings

DISCOVERY_CACHE_SIZE = 512


class ParquetReader:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._datasets: OrderedDict[str, pads.Dataset] = OrderedDict()
        self._lock = threading.Lock()

    @cached_property
    def filesystem(self) -> pafs.S3FileSystem:
        kwargs: dict[str, Any] = {"region": self.settings.aws_region}
        endpoint = self.settings.aws_endpoint_url
        if endpoint:
            scheme, _, host = endpoint.partition("://")
            kwargs.update(endpoint_override=host, scheme=scheme)
        if self.settings.aws_access_key_id:
            kwargs.update(
                access_key=self.settings.aws_access_key_id,
                secret_key=self.settings.aws_secret_access_key,
            )
        return pafs.S3FileSystem(**kwargs)

    def dataset(self, prefix: str) -> pads.Dataset:
        """A published version never changes, so its file listing and schema are looked up
        once per process (the prefix names the version). Called from worker threads."""
        with self._lock:
            found = self._datasets.get(prefix)
            if found is not None:
                self._datasets.move_to_end(prefix)
                return found
        found = pads.dataset(
            f"{self.settings.bucket}/{prefix}", filesystem=self.filesystem, format="parquet"
        )
        with self._lock:
            self._datasets[prefix] = found
            while len(self._datasets) > DISCOVERY_CACHE_SIZE:
                self._datasets.popitem(last=False)
        return found

    def head(self, prefix: str, limit: int) -> pa.Table:
        return self.dataset(prefix).head(limit)

    def read(
        self, prefix: str, *, columns: list[str] | None = None, filter: pc.Expression | None = None
    ) -> pa.Table:
        return self.dataset(prefix).to_table(columns=columns, filter=filter)

    def column_values(self, prefix: str, column: str, search: str | None, limit: int) -> list[str]:
        """Distinct non-null values of one column as strings, sorted."""
        data = self.dataset(prefix).to_table(columns=[column]).column(column)
        distinct = pc.unique(data).drop_null()
        text = as_text(distinct)
        if search:
            text = text.filter(pc.match_substring(text, search, ignore_case=True))
        ordered = pc.array_sort_indices(text)
        return list(text.take(ordered).slice(0, limit).to_pylist())


TIMESTAMP_TEXT = "%Y-%m-%dT%H:%M:%S"


def as_text(values: Any) -> Any:
    """A column's values as the strings users see in filter options; works on arrays and
    on scan expressions alike, so CATEGORY filters match exactly what columnValues lists."""
    is_expression = isinstance(values, pc.Expression)
    value_type = None if is_expression else values.type

    def cast(target: pa.DataType) -> Any:
        return (
            values.cast(target, safe=False)
            if is_expression
            else pc.cast(values, target, safe=False)
        )

    if value_type is not None and pa.types.is_string(value_type):
        return values
    if value_type is not None and pa.types.is_timestamp(value_type):
        return pc.strftime(cast(pa.timestamp("s")), format=TIMESTAMP_TEXT)
    return cast(pa.string())


def filter_expression(filters: list[ResolvedFilter], schema: pa.Schema) -> pc.Expression | None:
    """One scan predicate from resolved filters (ANDed), pushed down into the Parquet read."""
    combined: pc.Expression | None = None
    for flt in filters:
        field = pc.field(flt.column)
        column_type = schema.field(flt.column).type
        if flt.kind is FilterKind.CATEGORY:
            condition = text_of(field, column_type).isin(list(flt.values))
        else:
            condition = None
            if flt.lower is not None:
                condition = field >= _scalar(flt.lower, column_type)
            if flt.upper is not None:
                bound = _scalar(flt.upper, column_type)
                upper = field < bound if flt.upper_exclusive else field <= bound
                condition = upper if condition is None else condition & upper
            if condition is None:
                condition = field.is_valid()
        if flt.include_null:
            condition = condition | field.is_null()
        combined = condition if combined is None else combined & condition
    return combined


def text_of(field: pc.Expression, column_type: pa.DataType) -> pc.Expression:
    """A column in a scan predicate as the strings users see (as_text)."""
    if pa.types.is_timestamp(column_type):
        return pc.strftime(field.cast(pa.timestamp("s"), safe=False), format=TIMESTAMP_TEXT)
    if pa.types.is_string(column_type) or pa.types.is_large_string(column_type):
        return field
    return field.cast(pa.string(), safe=False)


_INTEGER_TEXT = re.compile(r"0|-?[1-9][0-9]*")
NOTHING = pc.scalar(False)


def row_condition_expression(
    condition: RowCondition | None, schema: pa.Schema
) -> pc.Expression | None:
    """The scan predicate for a reader's row condition (an OR of ANDs of column ∈ values),
    pushed down into the Parquet read as platform filters are: None keeps every row, ()
    none. Values compare as the strings users see; a null never matches, and a column the
    data lacks matches nothing, so a policy fails closed."""
    if condition is None:
        return None
    alternatives = [
        reduce(operator.and_, [_one_of(column, values, schema) for column, values in conjunct])
        if conjunct
        else pc.scalar(True)
        for conjunct in condition
    ]
    return reduce(operator.or_, alternatives) if alternatives else NOTHING


def _one_of(column: str, values: Sequence[str], schema: pa.Schema) -> pc.Expression:
    """Where the column's value, as a string, is one of `values`. On an integer column the
    strings that are some integer's text become typed numbers (the others match nothing),
    so no string is made per row."""
    if column not in schema.names:
        return NOTHING
    column_type = schema.field(column).type
    if pa.types.is_integer(column_type):
        numbers = [int(v) for v in values if _INTEGER_TEXT.fullmatch(v)]
        return pc.field(column).isin(pa.array(_in_range(numbers, column_type), column_type))
    return text_of(pc.field(column), column_type).isin(list(values))


def _in_range(numbers: list[int], column_type: pa.DataType) -> list[int]:
    """The numbers an integer column of this type can hold (no other can match)."""
    held = []
    for number in numbers:
        try:
            pa.scalar(number, column_type)
        except (OverflowError, pa.ArrowInvalid):
            continue
        held.append(number)
    return held


def read_predicate(
    filters: list[ResolvedFilter], row_condition: RowCondition | None, schema: pa.Schema
) -> pc.Expression | None:
    """A run's whole scan predicate: its platform filters and its reader's row condition."""
    parts = [filter_expression(filters, schema), row_condition_expression(row_condition, schema)]
    present = [p for p in parts if p is not None]
    return reduce(operator.and_, present) if present else None


def visible_columns(
    schema: pa.Schema, columns: Sequence[str] | None, hidden: Sequence[str]
) -> list[str] | None:
    """The columns to read: the projection (every column when None) without hidden ones."""
    if not hidden:
        return list(columns) if columns is not None else None
    names = columns if columns is not None else schema.names
    return [name for name in names if name not in set(hidden)]


def _scalar(value: Any, column_type: pa.DataType) -> pa.Scalar:
    if (
        pa.types.is_timestamp(column_type)
        and isinstance(value, date)
        and not isinstance(value, datetime)
    ):
        value = datetime(value.year, value.month, value.day)
    if pa.types.is_integer(column_type) and isinstance(value, float):
        return pa.scalar(value, pa.float64())
    return pa.scalar(value, column_type)

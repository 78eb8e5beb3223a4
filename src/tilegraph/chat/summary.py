"""Per-dataset summaries that ground the chatbot, computed over every row with pyarrow.compute.

The data is read one record batch at a time and each column folds its batch into a small
accumulator, so memory does not grow with the row count:

* counts, nulls, min, max and sum combine by addition / comparison;
* mean and standard deviation combine with Chan's parallel form of Welford's update (per
  batch mean and M2 from pyarrow), which stays accurate where "sum of squares" cancels;
* text and boolean columns count values exactly — per-batch ``value_counts`` merged into an
  Arrow table of value → count (grouped again whenever the pending part grows) — up to
  ``exact_distinct_limit`` distinct values (100,000 by default). Past it the column switches to
  bounded mode: the distinct count becomes a HyperLogLog estimate (16 KiB, ~1 % error,
  ``distinct_exact=False``); only each batch's most frequent values stay candidates and the
  value table is pruned to its most frequent half, so values that really are frequent keep
  their place in the top ten but their counts become lower bounds (``top_values_exact=False``).
  Exact counting of a million distinct values would hold them all (and costs more time too).

Parquet datasets are read file by file with pre-buffering off (see `_parquet_batches`), so
Arrow memory stays at about one row group whatever the file size.

`summarize_table` is CPU work: call it in a thread or worker, never on the event loop.
Summaries serialise with `to_json` / `from_json` for a cache keyed by `summary_cache_key`
(by dataset version, and by the reader's effective access when it is less than everything).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal, TypeAlias

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from tilegraph.chat.sketch import HyperLogLog
from tilegraph.domain.datasets import ColumnType

SUMMARY_FORMAT = 1
TOP_VALUES = 10
DEFAULT_BATCH_ROWS = 131_072
DEFAULT_EXACT_DISTINCT_LIMIT = 100_000

Kind = Literal["number", "text", "date", "bool", "other"]
Scalar = int | float | str
TableLike: TypeAlias = pa.Table | ds.Dataset | pa.RecordBatchReader


class SummaryFormatError(ValueError):
    """A cached summary was written by another format version; recompute it."""


@dataclass(frozen=True)
class ColumnSummary:
    """What the chatbot knows about one column.

    ``count`` is the number of present values; ``null_count`` the missing ones (NaN counts as
    missing for floats). ``min``/``max`` are numbers for numeric columns and ISO strings for
    dates. ``std`` is the sample standard deviation (ddof=1, as pandas). ``top_values`` holds
    up to ten (value, count) pairs, most frequent first, for text and boolean columns.
    """

    name: str
    type: str
    kind: Kind
    count: int
    null_count: int
    min: Scalar | None = None
    max: Scalar | None = None
    mean: float | None = None
    std: float | None = None
    sum: int | float | None = None
    distinct_count: int | None = None
    distinct_exact: bool = True
    top_values: tuple[tuple[str, int], ...] = ()
    top_values_exact: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "kind": self.kind,
            "count": self.count,
            "null_count": self.null_count,
            "min": self.min,
            "max": self.max,
            "mean": self.mean,
            "std": self.std,
            "sum": self.sum,
            "distinct_count": self.distinct_count,
            "distinct_exact": self.distinct_exact,
            "top_values": [[value, count] for value, count in self.top_values],
            "top_values_exact": self.top_values_exact,
        }

    @classmethod
    def from_dict(cls, item: Mapping[str, Any]) -> ColumnSummary:
        return cls(
            name=str(item["name"]),
            type=str(item["type"]),
            kind=item["kind"],
            count=int(item["count"]),
            null_count=int(item["null_count"]),
            min=item.get("min"),
            max=item.get("max"),
            mean=item.get("mean"),
            std=item.get("std"),
            sum=item.get("sum"),
            distinct_count=item.get("distinct_count"),
            distinct_exact=bool(item.get("distinct_exact", True)),
            top_values=tuple((str(v), int(c)) for v, c in item.get("top_values", ())),
            top_values_exact=bool(item.get("top_values_exact", True)),
        )


@dataclass(frozen=True)
class DatasetSummary:
    """One published version of a dataset, summarised over all of its rows."""

    dataset_id: str
    name: str
    version: int
    row_count: int
    columns: tuple[ColumnSummary, ...] = field(default_factory=tuple)

    def column(self, name: str) -> ColumnSummary | None:
        return next((c for c in self.columns if c.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": SUMMARY_FORMAT,
            "dataset_id": self.dataset_id,
            "name": self.name,
            "version": self.version,
            "row_count": self.row_count,
            "columns": [column.to_dict() for column in self.columns],
        }

    @classmethod
    def from_dict(cls, item: Mapping[str, Any]) -> DatasetSummary:
        if item.get("format") != SUMMARY_FORMAT:
            raise SummaryFormatError(
                f"summary format {item.get('format')!r} is not {SUMMARY_FORMAT}"
            )
        return cls(
            dataset_id=str(item["dataset_id"]),
            name=str(item["name"]),
            version=int(item["version"]),
            row_count=int(item["row_count"]),
            columns=tuple(ColumnSummary.from_dict(c) for c in item["columns"]),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> DatasetSummary:
        return cls.from_dict(json.loads(text))


def summary_cache_key(dataset_id: str, version: int, access_key: str | None = None) -> str:
    """Cache key for one dataset version, as seen whole or through one effective access
    (`access_key`, its fingerprint); the format number retires entries of older code."""
    key = f"tilegraph:chat:summary:f{SUMMARY_FORMAT}:{dataset_id}:v{version}"
    return key if access_key is None else f"{key}:a{access_key}"


def summarize_table(
    data: TableLike,
    *,
    dataset_id: str,
    name: str,
    version: int,
    column_types: Mapping[str, str] | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    exact_distinct_limit: int = DEFAULT_EXACT_DISTINCT_LIMIT,
) -> DatasetSummary:
    """Summarise every row of a table, a `pyarrow.dataset.Dataset` or a record batch reader.

    `column_types` maps column names to the dataset's declared `ColumnType` values (what users
    see); columns without one get a type inferred from Arrow. The statistics computed follow
    the Arrow type, so a mislabelled column still gets sound figures.
    """
    if batch_rows < 1:
        raise ValueError("batch_rows must be positive")
    if exact_distinct_limit < 2:
        raise ValueError("exact_distinct_limit must be at least 2")
    declared = column_types or {}
    schema = data.schema
    accumulators = [
        _accumulator(f, declared.get(f.name) or _inferred_type(f.type), exact_distinct_limit)
        for f in schema
    ]
    rows = 0
    for batch in _batches(data, batch_rows):
        rows += batch.num_rows
        for index, accumulator in enumerate(accumulators):
            accumulator.add(batch.column(index))
    return DatasetSummary(
        dataset_id=dataset_id,
        name=name,
        version=version,
        row_count=rows,
        columns=tuple(a.result(rows) for a in accumulators),
    )


def _batches(data: TableLike, batch_rows: int) -> Iterator[pa.RecordBatch]:
    if isinstance(data, pa.Table):
        yield from data.to_batches(max_chunksize=batch_rows)
    elif isinstance(data, ds.FileSystemDataset) and isinstance(data.format, ds.ParquetFileFormat):
        yield from _parquet_batches(data, batch_rows)
    elif isinstance(data, ds.Dataset):
        yield from data.to_batches(batch_size=batch_rows, batch_readahead=2, fragment_readahead=1)
    else:
        yield from data


def _parquet_batches(data: ds.FileSystemDataset, batch_rows: int) -> Iterator[pa.RecordBatch]:
    """Parquet files one by one with `ParquetFile.iter_batches`, pre-buffering off.

    Bounded memory: with a consumer as slow as the summary, the dataset scanner (and the
    default pre-buffered reader) kept reading ahead until much of the file was in memory
    (apache/arrow#39808); measured on 3M rows, 87-156 MiB and growing with the file against a
    flat 25 MiB here. A file lacking some dataset column (a partition field) goes through the
    fragment's own scanner, which fills such columns in.
    """
    schema = data.schema
    names = schema.names
    for fragment in data.get_fragments():
        with data.filesystem.open_input_file(fragment.path) as source:
            reader = pq.ParquetFile(source, pre_buffer=False, buffer_size=1 << 20)
            if not set(names) <= set(reader.schema_arrow.names):
                batches = fragment.to_batches(schema=schema, columns=names, batch_size=batch_rows)
            else:
                batches = reader.iter_batches(batch_size=batch_rows, columns=names)
            for batch in batches:
                # Files of one dataset version agree on types; cast if one does not.
                yield batch if batch.schema.types == schema.types else batch.cast(schema)


def _inferred_type(arrow_type: pa.DataType) -> str:
    if pa.types.is_integer(arrow_type):
        return ColumnType.INT64.value
    if pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type):
        return ColumnType.FLOAT64.value
    if pa.types.is_boolean(arrow_type):
        return ColumnType.BOOL.value
    if pa.types.is_date(arrow_type):
        return ColumnType.DATE.value
    if pa.types.is_timestamp(arrow_type):
        return ColumnType.DATETIME.value
    if _is_text(arrow_type):
        return ColumnType.STRING.value
    return str(arrow_type)


def _is_text(arrow_type: pa.DataType) -> bool:
    if pa.types.is_dictionary(arrow_type):
        return _is_text(arrow_type.value_type)
    return bool(
        pa.types.is_string(arrow_type)
        or pa.types.is_large_string(arrow_type)
        or pa.types.is_string_view(arrow_type)
    )


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


class _Accumulator:
    """Folds record-batch columns into one ColumnSummary."""

    kind: Kind = "other"

    def __init__(self, name: str, declared_type: str) -> None:
        self.name = name
        self.declared_type = declared_type
        self.null_count = 0

    def add(self, column: pa.Array) -> None:
        self.null_count += column.null_count

    def result(self, rows: int) -> ColumnSummary:
        return self._summary(rows)

    def _summary(self, rows: int, **stats: Any) -> ColumnSummary:
        return ColumnSummary(
            name=self.name,
            type=self.declared_type,
            kind=self.kind,
            count=rows - self.null_count,
            null_count=self.null_count,
            **stats,
        )


class _Numeric(_Accumulator):
    kind: Kind = "number"

    def __init__(self, name: str, declared_type: str, arrow_type: pa.DataType) -> None:
        super().__init__(name, declared_type)
        self.is_float = not pa.types.is_integer(arrow_type)
        self.count = 0
        self.minimum: int | float | None = None
        self.maximum: int | float | None = None
        self.total: int | float = 0
        self.mean = 0.0
        self.m2 = 0.0  # sum of squared deviations from the running mean

    def add(self, column: pa.Array) -> None:
        super().add(column)
        if pa.types.is_decimal(column.type):
            column = pc.cast(column, pa.float64())
        if self.is_float:
            nan = pc.is_nan(column)
            nan_count = pc.sum(nan).as_py() or 0
            if nan_count:
                self.null_count += nan_count
                column = pc.filter(column, pc.invert(nan))
        n = len(column) - column.null_count
        if n == 0:
            return
        bounds = pc.min_max(column)
        low, high = bounds["min"].as_py(), bounds["max"].as_py()
        self.minimum = low if self.minimum is None else min(self.minimum, low)
        self.maximum = high if self.maximum is None else max(self.maximum, high)
        self.total += pc.sum(column).as_py()
        batch_mean = float(pc.mean(column).as_py())
        batch_m2 = float(pc.variance(column, ddof=0).as_py()) * n
        combined = self.count + n
        delta = batch_mean - self.mean
        self.mean += delta * n / combined
        self.m2 += batch_m2 + delta * delta * self.count * n / combined
        self.count = combined

    def result(self, rows: int) -> ColumnSummary:
        if self.count == 0:
            return self._summary(rows)
        # Integers: the exact sum gives the best-rounded mean.
        mean = self.total / self.count if not self.is_float else self.mean
        std = math.sqrt(max(self.m2, 0.0) / (self.count - 1)) if self.count > 1 else None
        total = self.total if not self.is_float else _finite(float(self.total))
        return self._summary(
            rows,
            min=self.minimum,
            max=self.maximum,
            mean=_finite(mean),
            std=_finite(std),
            sum=total,
        )


class _Temporal(_Accumulator):
    kind: Kind = "date"

    def __init__(self, name: str, declared_type: str) -> None:
        super().__init__(name, declared_type)
        self.minimum: date | datetime | None = None
        self.maximum: date | datetime | None = None

    def add(self, column: pa.Array) -> None:
        super().add(column)
        if len(column) == column.null_count:
            return
        if pa.types.is_timestamp(column.type) and column.type.unit == "ns":
            # Python datetimes hold microseconds; nanosecond scalars would become pandas objects.
            column = pc.cast(column, pa.timestamp("us", column.type.tz), safe=False)
        bounds = pc.min_max(column)
        low, high = bounds["min"].as_py(), bounds["max"].as_py()
        self.minimum = low if self.minimum is None else min(self.minimum, low)
        self.maximum = high if self.maximum is None else max(self.maximum, high)

    def result(self, rows: int) -> ColumnSummary:
        if self.minimum is None or self.maximum is None:
            return self._summary(rows)
        return self._summary(rows, min=self.minimum.isoformat(), max=self.maximum.isoformat())


class _Categorical(_Accumulator):
    """Exact value counts up to a limit of distinct values, then HyperLogLog + candidates."""

    def __init__(self, name: str, declared_type: str, kind: Kind, limit: int) -> None:
        super().__init__(name, declared_type)
        self.kind = kind
        self.limit = limit
        self.merged: pa.Table | None = None
        self.pending: list[pa.Table] = []
        self.pending_rows = 0
        self.sketch: HyperLogLog | None = None
        self.pruned = False
        # In bounded mode only each batch's most frequent values are kept as candidates.
        self.candidates_per_batch = max(TOP_VALUES * 10, limit // 10)

    def add(self, column: pa.Array) -> None:
        super().add(column)
        if len(column) == column.null_count:
            return
        if pa.types.is_dictionary(column.type):
            column = column.dictionary_decode()
        counted = pc.value_counts(column)
        values, counts = counted.field("values"), counted.field("counts")
        if values.null_count:
            present = pc.is_valid(values)
            values, counts = pc.filter(values, present), pc.filter(counts, present)
        if not pa.types.is_string(values.type):
            # One type across batches and files. Not large_string: Arrow groups 32-bit-offset
            # strings several times faster, and a batch's distinct values stay far below 2 GiB.
            values = pc.cast(values, pa.string())
        counted_table = pa.table({"value": values, "count": pc.cast(counts, pa.int64())})
        if self.sketch is not None:
            self.sketch.add(values)
            if counted_table.num_rows > self.candidates_per_batch:
                keep = pc.select_k_unstable(
                    counted_table, k=self.candidates_per_batch, sort_keys=[("count", "descending")]
                )
                counted_table = counted_table.take(keep)
        self.pending.append(counted_table)
        self.pending_rows += counted_table.num_rows
        if self.pending_rows > self.limit:
            self._merge()

    def _merge(self) -> None:
        tables = ([self.merged] if self.merged is not None else []) + self.pending
        self.pending, self.pending_rows = [], 0
        if not tables:
            return
        grouped = (
            pa.concat_tables(tables)
            .group_by("value", use_threads=False)
            .aggregate([("count", "sum")])
        )
        self.merged = pa.table({"value": grouped["value"], "count": grouped["count_sum"]})
        if self.merged.num_rows > self.limit:
            if self.sketch is None:
                self.sketch = HyperLogLog()
                self.sketch.add(self.merged["value"])  # every distinct value seen so far
            keep = pc.select_k_unstable(
                self.merged, k=self.limit // 2, sort_keys=[("count", "descending")]
            )
            self.merged = self.merged.take(keep)
            self.pruned = True

    def result(self, rows: int) -> ColumnSummary:
        self._merge()
        if self.merged is None:
            return self._summary(rows, distinct_count=0)
        order = pc.sort_indices(
            self.merged, sort_keys=[("count", "descending"), ("value", "ascending")]
        )
        top = self.merged.take(order[:TOP_VALUES]).to_pylist()
        return self._summary(
            rows,
            distinct_count=self.sketch.estimate() if self.sketch else self.merged.num_rows,
            distinct_exact=self.sketch is None,
            top_values=tuple((str(row["value"]), int(row["count"])) for row in top),
            top_values_exact=not self.pruned,
        )


def _accumulator(f: pa.Field, declared_type: str, limit: int) -> _Accumulator:
    arrow_type = f.type
    if (
        pa.types.is_integer(arrow_type)
        or pa.types.is_floating(arrow_type)
        or pa.types.is_decimal(arrow_type)
    ):
        return _Numeric(f.name, declared_type, arrow_type)
    if pa.types.is_date(arrow_type) or pa.types.is_timestamp(arrow_type):
        return _Temporal(f.name, declared_type)
    if pa.types.is_boolean(arrow_type):
        return _Categorical(f.name, declared_type, "bool", limit)
    if _is_text(arrow_type):
        return _Categorical(f.name, declared_type, "text", limit)
    return _Accumulator(f.name, declared_type)

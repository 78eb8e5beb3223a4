from __future__ import annotations

import math
import statistics
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from tests.unit.chat.data import COLUMN_TYPES, sales_table
from tilegraph.chat.summary import (
    ColumnSummary,
    DatasetSummary,
    SummaryFormatError,
    _batches,
    summarize_table,
    summary_cache_key,
)


def test_row_count_and_identity(summary: DatasetSummary) -> None:
    assert (summary.dataset_id, summary.name, summary.version) == ("ds_sales", "sales", 3)
    assert summary.row_count == 1000
    assert [c.name for c in summary.columns] == list(COLUMN_TYPES)
    assert [c.type for c in summary.columns] == list(COLUMN_TYPES.values())


def test_float_column_with_nulls(summary: DatasetSummary) -> None:
    amount = summary.column("amount")
    assert amount is not None and amount.kind == "number"
    values = [i * 0.5 for i in range(1, 1001) if i % 100]
    assert (amount.count, amount.null_count) == (990, 10)
    assert (amount.min, amount.max) == (0.5, 499.5)
    assert amount.sum == 247_500.0
    assert amount.mean == pytest.approx(250.0, abs=1e-12)
    assert amount.std == pytest.approx(statistics.stdev(values), rel=1e-12)


def test_integer_column_keeps_exact_integer_sum(summary: DatasetSummary) -> None:
    sales = summary.column("売上")
    assert sales is not None
    assert (sales.min, sales.max, sales.sum) == (10, 10_000, 5_005_000)
    assert isinstance(sales.sum, int) and isinstance(sales.min, int)
    assert sales.mean == 5005.0
    assert sales.std == pytest.approx(statistics.stdev(range(10, 10_001, 10)), rel=1e-12)
    assert sales.null_count == 0


def test_text_columns_distinct_and_top_values(summary: DatasetSummary) -> None:
    region = summary.column("region")
    assert region is not None and region.kind == "text"
    assert region.distinct_count == 4 and region.distinct_exact
    assert region.top_values == (("East", 400), ("West", 300), ("North", 200), ("South", 100))
    chiiki = summary.column("地域")
    assert chiiki is not None
    assert chiiki.top_values == (("東京", 500), ("大阪", 300), ("名古屋", 200))
    customer = summary.column("customer")
    assert customer is not None
    assert customer.distinct_count == 1000 and customer.distinct_exact
    # Ten values, ties broken by value so the result is stable.
    assert customer.top_values == tuple((f"c{i:05d}", 1) for i in range(1, 11))
    assert region.min is None and region.mean is None


def test_dates_and_booleans(summary: DatasetSummary) -> None:
    order_date = summary.column("order_date")
    assert order_date is not None and order_date.kind == "date"
    assert (order_date.min, order_date.max) == ("2024-01-01", "2024-12-31")
    registered = summary.column("登録日")
    assert registered is not None
    assert registered.min == "2023-04-01T10:00:00"
    assert registered.max == (datetime(2023, 4, 1, 9) + timedelta(hours=1000)).isoformat()
    active = summary.column("active")
    assert active is not None and active.kind == "bool"
    assert active.top_values == (("false", 667), ("true", 333))
    assert active.distinct_count == 2


def test_multi_batch_parquet_dataset_equals_single_table(tmp_path: Path, table: pa.Table) -> None:
    directory = tmp_path / "v3"
    directory.mkdir()
    pq.write_table(table.slice(0, 600), directory / "part-0.parquet", row_group_size=64)
    pq.write_table(table.slice(600), directory / "part-1.parquet", row_group_size=64)
    dataset = ds.dataset(directory, format="parquet")
    assert len(list(dataset.to_batches(batch_size=50))) > 10

    streamed = summarize_table(
        dataset,
        dataset_id="ds_sales",
        name="sales",
        version=3,
        column_types=COLUMN_TYPES,
        batch_rows=50,
    )
    whole = summarize_table(
        table,
        dataset_id="ds_sales",
        name="sales",
        version=3,
        column_types=COLUMN_TYPES,
        batch_rows=1_000_000,
    )
    assert _rounded(streamed.to_dict()) == _rounded(whole.to_dict())


def _rounded(item: object) -> object:
    """Floats to 9 significant digits: batch-wise mean/std differ in the last bits only."""
    if isinstance(item, float):
        return float(f"{item:.9g}")
    if isinstance(item, dict):
        return {k: _rounded(v) for k, v in item.items()}
    if isinstance(item, list):
        return [_rounded(v) for v in item]
    return item


def test_record_batch_reader_and_tiny_batches(table: pa.Table, summary: DatasetSummary) -> None:
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=7))
    streamed = summarize_table(
        reader,
        dataset_id="ds_sales",
        name="sales",
        version=3,
        column_types=COLUMN_TYPES,
        exact_distinct_limit=5000,
    )
    assert _rounded(streamed.to_dict()) == _rounded(summary.to_dict())


def test_mean_and_std_stay_accurate_for_large_offsets() -> None:
    """Sum-of-squares would lose all digits here; the batch-wise Welford/Chan merge does not."""
    values = [1e9 + v for v in (4.0, 7.0, 13.0, 16.0)] * 250
    result = summarize_table(
        pa.table({"x": values}), dataset_id="d", name="n", version=1, batch_rows=3
    ).columns[0]
    assert result.mean == pytest.approx(1e9 + 10.0, abs=1e-6)
    assert result.std == pytest.approx(statistics.stdev([4.0, 7.0, 13.0, 16.0] * 250), rel=1e-9)


def test_nan_counts_as_missing_and_all_null_columns_have_no_stats() -> None:
    table = pa.table(
        {
            "x": pa.array([1.0, math.nan, None, 3.0]),
            "empty": pa.array([None, None, None, None], pa.int64()),
            "words": pa.array([None, None, None, None], pa.string()),
        }
    )
    x, empty, words = summarize_table(table, dataset_id="d", name="n", version=1).columns
    assert (x.count, x.null_count, x.min, x.max, x.mean, x.sum) == (2, 2, 1.0, 3.0, 2.0, 4.0)
    assert (empty.count, empty.null_count, empty.min, empty.mean, empty.std) == (
        0,
        4,
        None,
        None,
        None,
    )
    assert (words.distinct_count, words.top_values) == (0, ())


def test_empty_table() -> None:
    table = pa.table({"x": pa.array([], pa.float64()), "s": pa.array([], pa.string())})
    result = summarize_table(table, dataset_id="d", name="n", version=1)
    assert result.row_count == 0
    assert [(c.count, c.null_count, c.min) for c in result.columns] == [(0, 0, None), (0, 0, None)]


def test_types_are_inferred_when_not_declared() -> None:
    table = pa.table({"a": [1], "b": [1.5], "c": ["x"], "d": [True]})
    result = summarize_table(table, dataset_id="d", name="n", version=1)
    assert [c.type for c in result.columns] == ["INT64", "FLOAT64", "STRING", "BOOL"]


def test_past_the_exact_limit_distinct_is_estimated_and_frequent_values_survive() -> None:
    rows = 20_000
    values = ["hot" if i % 4 == 0 else f"id-{i}" for i in range(rows)]
    table = pa.table({"v": values, "small": [f"k{i % 3}" for i in range(rows)]})
    result = summarize_table(
        table, dataset_id="d", name="n", version=1, batch_rows=1000, exact_distinct_limit=500
    )
    big, small = result.columns
    true_distinct = rows - rows // 4 + 1
    assert not big.distinct_exact and not big.top_values_exact
    assert big.distinct_count == pytest.approx(true_distinct, rel=0.03)
    assert big.top_values[0] == ("hot", 5000)
    assert small.distinct_exact and small.distinct_count == 3
    assert small.top_values == (("k0", 6667), ("k1", 6667), ("k2", 6666))


def test_json_round_trip_and_format_check(summary: DatasetSummary) -> None:
    text = summary.to_json()
    assert "東京" in text  # stored readable, not \u-escaped
    assert DatasetSummary.from_json(text) == summary
    assert DatasetSummary.from_json(text.encode()) == summary
    stale = summary.to_dict() | {"format": 0}
    with pytest.raises(SummaryFormatError):
        DatasetSummary.from_dict(stale)
    column = summary.columns[1]
    assert ColumnSummary.from_dict(column.to_dict()) == column


def test_cache_key_names_dataset_and_version() -> None:
    assert summary_cache_key("ds_1", 3) != summary_cache_key("ds_1", 4)
    assert "ds_1" in summary_cache_key("ds_1", 3)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        summarize_table(sales_table(10), dataset_id="d", name="n", version=1, batch_rows=0)


def test_parquet_files_are_read_batch_by_batch_in_bounded_memory(tmp_path: Path) -> None:
    rows = 400_000
    table = pa.table(
        {
            "n": pa.array(range(rows), pa.int64()),
            "s": pa.array([f"value-{i % 50_000:06d}" for i in range(rows)]),
        }
    )
    pq.write_table(table, tmp_path / "data.parquet", row_group_size=20_000)
    size = table.nbytes
    del table
    baseline = pa.total_allocated_bytes()
    peak, rows_read = 0, 0
    for batch in _batches(ds.dataset(tmp_path, format="parquet"), 20_000):
        rows_read += batch.num_rows
        peak = max(peak, pa.total_allocated_bytes() - baseline)
    assert rows_read == rows
    # One row group (1/20 of the data) and buffers, not the file: the scanner with
    # pre-buffering held a growing share of it.
    assert peak < size / 4, (peak, size)


def test_parquet_files_with_partition_fields_and_differing_types(tmp_path: Path) -> None:
    for partition, amounts in ((2023, pa.array([1.5, 2.5])), (2024, pa.array([3, 4], pa.int64()))):
        directory = tmp_path / f"year={partition}"
        directory.mkdir()
        pq.write_table(pa.table({"amount": amounts}), directory / "part.parquet")
    hive = ds.dataset(tmp_path, format="parquet", partitioning="hive")
    result = summarize_table(hive, dataset_id="d", name="n", version=1)
    amount, year = result.columns
    assert (amount.sum, amount.min, amount.max) == (11.0, 1.5, 4.0)
    assert (year.min, year.max, year.count) == (2023, 2024, 4)
    plain = ds.dataset(
        [tmp_path / "year=2023" / "part.parquet", tmp_path / "year=2024" / "part.parquet"],
        format="parquet",
    )
    assert summarize_table(plain, dataset_id="d", name="n", version=1).columns[0].sum == 11.0

"""The pure rules of a card's metrics, table summary and table cells."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from tilegraph.domain.card_outputs import (
    CardOutputError,
    TableSummary,
    check_metrics,
    check_rows_limit,
    check_table_columns,
    json_cell,
    spreadsheet_cell,
)
from tilegraph.domain.cards import CardResultRecord


def test_good_metrics_are_kept_as_given() -> None:
    assert check_metrics(None) is None
    assert check_metrics({}) == {}
    metrics = check_metrics({"total": 42.5, "count": 3, "zero": 0.0, "n" * 100: -1e125})
    assert metrics == {"total": 42.5, "count": 3, "zero": 0.0, "n" * 100: -1e125}
    assert isinstance(metrics["count"], int)
    assert len(check_metrics({f"m{i}": i for i in range(100)}) or {}) == 100


@pytest.mark.parametrize(
    ("metrics", "message"),
    [
        ({"x": "a"}, "Metric 'x' must be a number (int or float), not str"),
        ({"x": None}, "Metric 'x' must be a number (int or float), not NoneType"),
        ({"x": True}, "Metric 'x' must be a number (int or float), not bool"),
        ({"x": math.nan}, "Metric 'x' must be a finite number, not nan"),
        ({"x": -math.inf}, "Metric 'x' must be a finite number, not -inf"),
        ({"x": 1e126}, "Metric 'x' is out of range"),
        ({"x": 1e-131}, "Metric 'x' is out of range"),
        ({"x": 2**63}, "Metric 'x' is too large for an integer"),
        ({"": 1}, "Metric name '' must be a non-empty string"),
        ({"n" * 101: 1}, "at most 100 characters"),
        ({1: 1}, "Metric name 1 must be a non-empty string"),
        ({f"m{i}": i for i in range(101)}, "HTMLResult.metrics has 101 entries; at most 100"),
        ([("x", 1)], "HTMLResult.metrics must be a dict of name → number, not list"),
    ],
)
def test_bad_metrics_are_refused_naming_what_is_wrong(metrics: object, message: str) -> None:
    with pytest.raises(CardOutputError) as caught:
        check_metrics(metrics)
    assert message in str(caught.value)


def test_table_columns_must_fit_the_execution_record() -> None:
    check_table_columns([f"c{i}" for i in range(256)])
    with pytest.raises(CardOutputError, match="at most 256 columns"):
        check_table_columns([f"c{i}" for i in range(257)])
    with pytest.raises(CardOutputError, match="4096 bytes"):
        check_table_columns(["x" * 2049, "y" * 2048])


def test_rows_limit_is_1_to_1000() -> None:
    assert check_rows_limit(1) == 1 and check_rows_limit(1000) == 1000
    for bad in (0, -5, 1001):
        with pytest.raises(CardOutputError, match="between 1 and 1000"):
            check_rows_limit(bad)


def test_cells_become_json() -> None:
    assert [json_cell(v) for v in (None, True, 3, 2.5, "é")] == [None, True, 3, 2.5, "é"]
    assert json_cell(math.nan) is None and json_cell(math.inf) is None
    assert json_cell(date(2024, 1, 2)) == "2024-01-02"
    assert json_cell(datetime(2024, 1, 2, 3, 4, 5)) == "2024-01-02T03:04:05"
    assert json_cell(datetime(2024, 1, 2, tzinfo=UTC)) == "2024-01-02T00:00:00+00:00"


def test_spreadsheet_cells_have_no_nan_and_no_time_zone() -> None:
    assert spreadsheet_cell(math.nan) is None and spreadsheet_cell(1.5) == 1.5
    east = timezone(timedelta(hours=2))
    assert spreadsheet_cell(datetime(2024, 1, 2, 2, 0, tzinfo=east)) == datetime(2024, 1, 2)


def test_the_result_record_keeps_metrics_and_the_table_summary() -> None:
    record = CardResultRecord(
        "key", (), (), (), False, 1.0, metrics={"n": 1}, table=TableSummary(("a", "b"), 7)
    )
    item = record.to_item()
    assert item["metrics"] == {"n": 1} and item["table"] == {"columns": ["a", "b"], "row_count": 7}
    assert CardResultRecord.from_item(item) == record
    plain = CardResultRecord("key", (), (), (), False, 1.0)
    assert "metrics" not in plain.to_item() and "table" not in plain.to_item()
    assert CardResultRecord.from_item(plain.to_item()) == plain

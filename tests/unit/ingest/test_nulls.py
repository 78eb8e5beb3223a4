"""Null tokens: which cells are null, and what that makes of a column's type."""

from __future__ import annotations

import random
from pathlib import Path

import pyarrow as pa
import pytest

from tilegraph.domain.datasets import DEFAULT_NULL_VALUES, ColumnType
from tilegraph.domain.errors import BadUserInput
from tilegraph.domain.validation import check_null_values
from tilegraph.ingest.inference import TypeTracker
from tilegraph.ingest.nulls import NullCells

from .helpers import column_types, ingest, read_back, write


def _batch(*columns: list[str]) -> pa.RecordBatch:
    """Raw text columns, as the CSV reader hands them over (no nulls yet)."""
    arrays = [pa.array(values, pa.string()) for values in columns]
    return pa.RecordBatch.from_arrays(arrays, names=[f"f{i}" for i in range(len(arrays))])


def _marked(values: list[str], null_values: tuple[str, ...] = DEFAULT_NULL_VALUES) -> list[str]:
    return NullCells(null_values).mark(_batch(values)).column(0).to_pylist()  # type: ignore[no-any-return]


def test_every_default_token_and_the_empty_cell_is_null() -> None:
    assert _marked(["1", *DEFAULT_NULL_VALUES, "3"]) == ["1", *[None] * 10, "3"]


@pytest.mark.parametrize("value", ["na", "Na", " NA", "NA ", "N/A/", "#NA", "NONE", "nan.", "-"])
def test_tokens_match_exactly(value: str) -> None:
    assert _marked(["1", value]) == ["1", value]


def test_an_empty_list_keeps_every_cell() -> None:
    assert _marked(["", "NA", "1"], ()) == ["", "NA", "1"]


def test_a_custom_list_replaces_the_defaults() -> None:
    values = ["-", "", "NA", "欠損", "欠", "--", "x"]
    assert _marked(values, ("-", "欠損")) == [None, "", "NA", None, "欠", "--", "x"]


def test_a_sliced_block_is_marked_by_its_own_rows() -> None:
    column = pa.array(["NA", "1", "", "NULL", "2"], pa.string()).slice(1, 3)
    batch = pa.RecordBatch.from_arrays([column], names=["f0"])
    assert NullCells(DEFAULT_NULL_VALUES).mark(batch).column(0).to_pylist() == ["1", None, None]


def test_marking_agrees_with_a_set_lookup_on_random_cells() -> None:
    pool = ["", "NA", "N/A", "N", "NAN", "NaN", "n/a", "#", "#N/A", "None", "Nonе", "12", "x"]
    rng = random.Random(7)
    for _ in range(200):
        nulls = tuple(rng.sample(pool, k=rng.randint(0, 4)))
        values = [rng.choice(pool) for _ in range(rng.randint(1, 20))]
        expected = [None if v in set(nulls) else v for v in values]
        assert _marked(values, nulls) == expected, (nulls, values)


def _types(column: list[str], null_values: tuple[str, ...]) -> tuple[ColumnType, bool]:
    tracker = TypeTracker(1)
    tracker.observe(NullCells(null_values).mark(_batch(column)))
    return tracker.types()[0], tracker.has_null[0]


@pytest.mark.parametrize(
    ("column", "null_values", "expected"),
    [
        (["1", "NA", "3"], DEFAULT_NULL_VALUES, (ColumnType.INT64, True)),
        (["1.5", "#N/A", "nan"], DEFAULT_NULL_VALUES, (ColumnType.FLOAT64, True)),
        (["true", "NULL"], DEFAULT_NULL_VALUES, (ColumnType.BOOL, True)),
        (["2024-01-31", "None"], DEFAULT_NULL_VALUES, (ColumnType.DATE, True)),
        (["NA", "n/a"], DEFAULT_NULL_VALUES, (ColumnType.STRING, True)),
        (["1", "NA", "3"], (), (ColumnType.STRING, False)),
        # Kept as written, an empty cell is no number: the column is text.
        (["1", "", "3"], (), (ColumnType.STRING, False)),
        (["1", "-", "3"], ("-",), (ColumnType.INT64, True)),
        (["1", "NA", "3"], ("-",), (ColumnType.STRING, False)),
    ],
)
def test_null_cells_are_missing_values_to_inference(
    column: list[str], null_values: tuple[str, ...], expected: tuple[ColumnType, bool]
) -> None:
    assert _types(column, null_values) == expected


def test_a_file_with_tokens_is_typed_and_stored_with_nulls(tmp_path: Path, out_dir: Path) -> None:
    path = write(tmp_path / "t.csv", "n,v\n1,1\n2,NA\n3,\n4,#N/A\n5,3\n")
    result = ingest(path, out_dir)
    assert column_types(result) == {"n": "INT64", "v": "INT64"}
    assert read_back(out_dir, result).column("v").to_pylist() == [1, None, None, None, 3]


def test_a_token_on_top_of_a_column_is_no_header(tmp_path: Path, out_dir: Path) -> None:
    """The header is told from the data by the same rule: a first row with a token is data."""
    path = write(tmp_path / "h.csv", "1,NA\n2,5\n3,6\n")
    result = ingest(path, out_dir)
    assert result.row_count == 3
    assert column_types(result) == {"column_1": "INT64", "column_2": "INT64"}


def test_null_values_default_and_dedupe() -> None:
    assert check_null_values(None) == DEFAULT_NULL_VALUES
    assert check_null_values([]) == ()
    assert check_null_values(["-", "NA", "-"]) == ("-", "NA")


@pytest.mark.parametrize(
    "values", [[f"t{i}" for i in range(51)], ["x" * 65]], ids=["too many", "too long"]
)
def test_null_values_are_bounded(values: list[str]) -> None:
    with pytest.raises(BadUserInput) as caught:
        check_null_values(values)
    assert caught.value.field == "nullValues"

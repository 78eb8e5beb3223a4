"""A reader's row condition and hidden columns as a Parquet read: values compare as the
strings filter options show, nulls never match, and a column the data lacks shows nothing."""

from __future__ import annotations

from datetime import date, datetime

import pyarrow as pa
import pyarrow.dataset as pads

from tilegraph.domain.policies import FULL_ACCESS, EffectiveAccess, RowCondition
from tilegraph.store.parquet import row_condition_expression, visible_columns
from tilegraph.store.policy_filter import visible_batches, visible_values

DATA = pa.table(
    {
        "region": ["west", "west", "east", None, "north"],
        "n": [1, 2, 3, 4, None],
        "price": [1.0, 2.5, 3.0, 4.0, 5.0],
        "day": [date(2024, 1, d) for d in range(1, 6)],
        "at": [datetime(2024, 1, 1, 9, 30, d) for d in range(5)],
        "flag": [True, False, True, False, True],
        "secret": ["s1", "s2", "s3", "s4", "s5"],
    }
)


def access(condition: RowCondition | None, hidden: tuple[str, ...] = ()) -> EffectiveAccess:
    return EffectiveAccess(
        policies=(), row_condition=condition, hidden_columns=hidden, readable_condition=None
    )


def kept(condition: RowCondition | None) -> list[str]:
    """The `secret` of each row the condition keeps."""
    expression = row_condition_expression(condition, DATA.schema)
    table = pads.dataset(DATA).to_table(filter=expression)
    return list(table.column("secret").to_pylist())


def test_no_condition_keeps_every_row_and_an_empty_one_none() -> None:
    assert row_condition_expression(None, DATA.schema) is None
    assert kept(None) == ["s1", "s2", "s3", "s4", "s5"]
    assert kept(()) == []
    assert kept(((),)) == ["s1", "s2", "s3", "s4", "s5"]  # a conjunct of nothing holds


def test_values_compare_as_strings_of_every_type() -> None:
    assert kept(((("n", ("2", "4")),),)) == ["s2", "s4"]
    assert kept(((("price", ("2.5", "3")),),)) == ["s2", "s3"]
    assert kept(((("day", ("2024-01-02",)),),)) == ["s2"]
    assert kept(((("at", ("2024-01-01T09:30:04",)),),)) == ["s5"]
    assert kept(((("flag", ("false",)),),)) == ["s2", "s4"]


def test_conditions_are_an_or_of_ands_and_nulls_never_match() -> None:
    west_one = (("n", ("1", "3")), ("region", ("west",)))
    north = (("region", ("north",)),)
    assert kept((west_one,)) == ["s1"]
    assert kept((west_one, north)) == ["s1", "s5"]
    assert kept(((("region", ("west", "east", "north")),),)) == ["s1", "s2", "s3", "s5"]


def test_a_column_the_data_lacks_matches_nothing() -> None:
    assert kept(((("gone", ("x",)),),)) == []
    assert kept(((("gone", ("x",)), ("region", ("west",))), (("region", ("east",)),))) == ["s3"]


def test_visible_batches_leave_hidden_columns_out_entirely() -> None:
    seen = access(((("region", ("west",)),),), hidden=("secret", "region"))
    table = visible_batches(pads.dataset(DATA), seen).read_all()
    assert table.column_names == ["n", "price", "day", "at", "flag"]
    assert table.column("n").to_pylist() == [1, 2]
    assert visible_columns(DATA.schema, None, ("flag",)) == [
        "region",
        "n",
        "price",
        "day",
        "at",
        "secret",
    ]


def test_visible_values_come_from_visible_rows_only() -> None:
    data = pads.dataset(DATA)
    west = access(((("region", ("west",)),),), hidden=("secret",))
    assert visible_values(data, "n", west, None, 10) == ["1", "2"]
    assert visible_values(data, "secret", west, None, 10) == []
    assert visible_values(data, "gone", west, None, 10) == []
    assert visible_values(data, "region", access(()), None, 10) == []
    assert visible_values(data, "region", FULL_ACCESS, "ST", 10) == ["east", "west"]
    assert visible_values(data, "region", FULL_ACCESS, None, 2) == ["east", "north"]

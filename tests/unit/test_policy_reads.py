"""A reader's row condition and hidden columns applied to what a card reads, inside the
Parquet scan: values compared as the strings users see, a policy on a vanished column
matching nothing."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.dataset as pads
import pytest

from tilegraph.store.parquet import read_predicate, visible_columns

TABLE = pa.table(
    {
        "region": ["west", "east", "north", None],
        "small": pa.array([1, 2, 3, -4], pa.int8()),
        "ratio": [0.5, 1.0, 2.5, None],
        "flag": [True, False, True, False],
    }
)


def regions(condition: Any) -> list[str | None]:
    kept = pads.dataset(TABLE).to_table(filter=read_predicate([], condition, TABLE.schema))
    assert kept.schema == TABLE.schema  # every column stays, even with no rows
    return list(kept.column("region").to_pylist())


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (None, ["west", "east", "north", None]),
        ((), []),
        (((("region", ("west", "north")),),), ["west", "north"]),
        # Integers by their text: "01", "-0", "+1" and out-of-range numbers match nothing.
        (((("small", ("1", "-4", "01", "300", "x")),),), ["west", None]),
        (((("small", ("-0", "+2", " 3", "2.0")),),), []),
        (((("ratio", ("2.5",)),),), ["north"]),
        (((("flag", ("true",)),),), ["west", "north"]),
        # AND within a conjunct, OR between them.
        (
            ((("region", ("west", "east")), ("small", ("2",))), (("small", ("3",)),)),
            ["east", "north"],
        ),
        # A vanished column fails closed; the other conjuncts still count.
        (((("gone", ("west",)),),), []),
        (((("gone", ("west",)),), (("region", ("east",)),)), ["east"]),
    ],
    ids=[
        "all",
        "none",
        "values",
        "integers",
        "integer look-alikes",
        "floats",
        "booleans",
        "or-of-ands",
        "vanished column",
        "vanished column in one conjunct",
    ],
)
def test_row_conditions_compare_values_as_text(condition: Any, expected: list[str]) -> None:
    assert regions(condition) == expected


def test_hidden_columns_are_left_out_of_every_read() -> None:
    schema = TABLE.schema
    assert visible_columns(schema, None, ()) is None
    assert visible_columns(schema, None, ("ratio",)) == ["region", "small", "flag"]
    assert visible_columns(schema, ["ratio", "flag"], ("ratio",)) == ["flag"]

"""Filters as render() receives them, keyed by column, and the params rule."""

from __future__ import annotations

import pytest

from tilegraph.domain.errors import BadUserInput
from tilegraph.domain.filters import ColumnFilter, filters_by_column
from tilegraph.domain.validation import MAX_PARAMS_BYTES, check_params


def test_each_kind_of_filter_has_its_shape() -> None:
    assert filters_by_column(
        [
            ColumnFilter("region", values=("north", "south"), include_null=True),
            ColumnFilter("amount", start="10", end="20"),
            ColumnFilter("day", end="2024-01-31"),
            ColumnFilter("score", start="", end=""),  # empty bounds are not set
        ]
    ) == {
        "region": ["north", "south"],
        "amount": {"start": "10", "end": "20"},
        "day": {"end": "2024-01-31"},
        "score": {},
    }
    assert filters_by_column([]) == {}
    assert filters_by_column([ColumnFilter("region", values=())]) == {"region": []}


def test_category_filters_on_one_column_keep_the_values_common_to_all() -> None:
    merged = filters_by_column(
        [ColumnFilter("c", values=("b", "a", "c")), ColumnFilter("c", values=("c", "b", "d"))]
    )
    assert merged == {"c": ["b", "c"]}


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        (("9", "100"), ("10", "20"), {"start": "10", "end": "20"}),  # as numbers, not text
        (("10", None), (None, "20"), {"start": "10", "end": "20"}),
        (
            ("2024-01-01", "2024-01-31"),
            ("2024/01/05", "2024-01-31T12:00:00"),  # a bare end date covers its whole day
            {"start": "2024/01/05", "end": "2024-01-31T12:00:00"},
        ),
        (("2024-01-31T12:00:00", None), ("2024-01-31", None), {"start": "2024-01-31T12:00:00"}),
        (("b", "y"), ("a", "z"), {"start": "b", "end": "y"}),  # text compares as text
        (("5", "7"), ("5", "7"), {"start": "5", "end": "7"}),
    ],
)
def test_range_filters_on_one_column_keep_the_tightest_bounds(
    first: tuple[str | None, str | None],
    second: tuple[str | None, str | None],
    expected: dict[str, str],
) -> None:
    ranges = [ColumnFilter("x", start=s, end=e) for s, e in (first, second)]
    assert filters_by_column(ranges) == {"x": expected}
    assert filters_by_column(reversed(ranges)) == {"x": expected}


def test_category_values_win_over_a_range_on_the_same_column() -> None:
    category = ColumnFilter("x", values=("1", "2"))
    span = ColumnFilter("x", start="0", end="5")
    assert filters_by_column([category, span]) == {"x": ["1", "2"]}
    assert filters_by_column([span, category]) == {"x": ["1", "2"]}


def test_params_are_a_json_object_of_bounded_size() -> None:
    assert check_params(None) is None
    assert check_params({"multiplier": 2}) == {"multiplier": 2}
    for wrong in ([1], "x", 3, True):
        with pytest.raises(BadUserInput, match="must be a JSON object"):
            check_params(wrong)
    with pytest.raises(BadUserInput, match="bytes as JSON"):
        check_params({"big": "x" * MAX_PARAMS_BYTES})

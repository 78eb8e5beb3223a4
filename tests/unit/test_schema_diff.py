"""Schema diff of a re-import: what changed, in a stable order."""

from __future__ import annotations

from tilegraph.domain.datasets import ColumnSpec, ColumnType
from tilegraph.domain.schema_diff import SchemaChange, SchemaChangeType, diff_schemas

C = ColumnSpec
T = ColumnType
S = SchemaChangeType


def test_identical_schemas_have_no_changes() -> None:
    schema = [C("a", T.INT64, False), C("b", T.STRING, True, "a description")]
    assert diff_schemas(schema, list(schema)) == []


def test_descriptions_are_not_schema_changes() -> None:
    assert diff_schemas([C("a", T.INT64, False, "old")], [C("a", T.INT64, False, "new")]) == []


def test_added_and_removed_columns() -> None:
    old = [C("id", T.INT64, False), C("gone", T.DATE, True)]
    new = [C("id", T.INT64, False), C("fresh", T.BOOL, False)]
    assert diff_schemas(old, new) == [
        SchemaChange("fresh", S.ADDED, None, "BOOL"),
        SchemaChange("gone", S.REMOVED, "DATE", None),
    ]


def test_type_change_hides_a_nullability_change() -> None:
    old = [C("price", T.INT64, False)]
    new = [C("price", T.FLOAT64, True)]
    assert diff_schemas(old, new) == [SchemaChange("price", S.TYPE_CHANGED, "INT64", "FLOAT64")]


def test_nullability_change_with_the_same_type() -> None:
    assert diff_schemas([C("x", T.STRING, False)], [C("x", T.STRING, True)]) == [
        SchemaChange("x", S.NULLABLE_CHANGED, "false", "true")
    ]
    assert diff_schemas([C("x", T.DATE, True)], [C("x", T.DATE, False)]) == [
        SchemaChange("x", S.NULLABLE_CHANGED, "true", "false")
    ]


def test_order_follows_the_new_schema_then_removed_in_old_order() -> None:
    old = [
        C("r1", T.INT64, False),
        C("b", T.INT64, False),
        C("r2", T.STRING, False),
        C("a", T.DATE, False),
    ]
    new = [C("a", T.DATETIME, False), C("n", T.STRING, True), C("b", T.INT64, True)]
    changes = diff_schemas(old, new)
    assert [(c.column_name, c.change_type) for c in changes] == [
        ("a", S.TYPE_CHANGED),
        ("n", S.ADDED),
        ("b", S.NULLABLE_CHANGED),
        ("r1", S.REMOVED),
        ("r2", S.REMOVED),
    ]
    assert changes[0] == SchemaChange("a", S.TYPE_CHANGED, "DATE", "DATETIME")


def test_names_match_exactly() -> None:
    changes = diff_schemas([C("Name", T.STRING, False)], [C("name", T.STRING, False)])
    assert changes == [
        SchemaChange("name", S.ADDED, None, "STRING"),
        SchemaChange("Name", S.REMOVED, "STRING", None),
    ]


def test_change_types_are_strings_for_the_api() -> None:
    assert [t.value for t in S] == ["ADDED", "REMOVED", "TYPE_CHANGED", "NULLABLE_CHANGED"]
    assert S.ADDED == "ADDED"

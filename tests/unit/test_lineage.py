"""The lineage walk over data at hand (depth, direction, who may see what, hidden
counting), the placements a layout change writes, and what a schema change breaks."""

from __future__ import annotations

import pytest

from tilegraph.domain.errors import BadUserInput
from tilegraph.domain.lineage import (
    DOWN,
    LineageDirection,
    LineageEdge,
    LineageRelation,
    Step,
    broken_columns,
    code_mentions,
    placement_changes,
    reads_broken,
    walk_loaded,
)
from tilegraph.domain.schema_diff import SchemaChange, SchemaChangeType

R = LineageRelation
# ds_a → tf → ds_b → card_1 → dash_1, and ds_b → card_2 → dash_1, dash_2
EDGES = [
    LineageEdge("ds_a", "tf_1", R.INPUT_OF),
    LineageEdge("tf_1", "ds_b", R.PRODUCES),
    LineageEdge("ds_b", "card_1", R.READ_BY),
    LineageEdge("ds_b", "card_2", R.READ_BY),
    LineageEdge("card_1", "dash_1", R.SHOWN_ON),
    LineageEdge("card_2", "dash_1", R.SHOWN_ON),
    LineageEdge("card_2", "dash_2", R.SHOWN_ON),
]


def neighbours(step: Step) -> list[LineageEdge]:
    object_id, way = step
    if way is DOWN:
        return [e for e in EDGES if e.from_id == object_id]
    return [e for e in EDGES if e.to_id == object_id]


def everyone(object_id: str, edge: LineageEdge) -> bool:
    return True


def test_downstream_walks_every_hop_up_to_the_depth() -> None:
    walk = walk_loaded("ds_a", LineageDirection.DOWNSTREAM, 5, neighbours, everyone)
    assert walk.node_ids == ["ds_a", "tf_1", "ds_b", "card_1", "card_2", "dash_1", "dash_2"]
    assert set(walk.edges) == set(EDGES) and walk.hidden_count == 0
    short = walk_loaded("ds_a", LineageDirection.DOWNSTREAM, 2, neighbours, everyone)
    assert short.node_ids == ["ds_a", "tf_1", "ds_b"]
    assert set(short.edges) == set(EDGES[:2])


def test_upstream_and_both_never_turn_back() -> None:
    up = walk_loaded("dash_2", LineageDirection.UPSTREAM, 5, neighbours, everyone)
    assert up.node_ids == ["dash_2", "card_2", "ds_b", "tf_1", "ds_a"]
    # From card_1 both ways: its dashboard and its upstream, never card_2 (a sibling).
    both = walk_loaded("card_1", LineageDirection.BOTH, 5, neighbours, everyone)
    assert set(both.node_ids) == {"card_1", "dash_1", "ds_b", "tf_1", "ds_a"}
    assert both.node_ids[0] == "card_1"


def test_hidden_objects_are_counted_once_and_never_walked_through() -> None:
    def not_ds_b(object_id: str, edge: LineageEdge) -> bool:
        return object_id != "ds_b"

    walk = walk_loaded("dash_1", LineageDirection.UPSTREAM, 5, neighbours, not_ds_b)
    # ds_b is reached from both cards but counted once; tf_1 and ds_a lie behind it.
    assert walk.node_ids == ["dash_1", "card_1", "card_2"]
    assert walk.hidden_count == 1
    assert all("ds_b" not in (e.from_id, e.to_id) for e in walk.edges)


def test_an_object_hidden_one_way_and_shown_another_is_listed() -> None:
    def card_2_only_through_dash_2(object_id: str, edge: LineageEdge) -> bool:
        return object_id != "card_2" or edge.to_id == "dash_2"

    def from_dashboards(step: Step) -> list[LineageEdge]:
        object_id = step[0]
        if object_id == "root":
            return [
                LineageEdge("root", "dash_1", R.SHOWN_ON),
                LineageEdge("root", "dash_2", R.SHOWN_ON),
            ]
        return neighbours((object_id, LineageDirection.UPSTREAM))

    walk = walk_loaded(
        "root", LineageDirection.DOWNSTREAM, 2, from_dashboards, card_2_only_through_dash_2
    )
    assert "card_2" in walk.node_ids and walk.hidden_count == 0


@pytest.mark.parametrize("depth", [0, 11, -1])
def test_the_depth_is_one_to_ten(depth: int) -> None:
    with pytest.raises(BadUserInput) as raised:
        walk_loaded("ds_a", LineageDirection.BOTH, depth, neighbours, everyone)
    assert raised.value.field == "depth"


def test_placements_added_and_removed_by_a_layout_change() -> None:
    changes = placement_changes(["c1", "c2", "c2"], ["c2", "c3", "c3"])
    assert changes.added == ("c3",) and changes.removed == ("c1",)
    assert placement_changes([], ["c1", "c1"]).added == ("c1",)
    assert placement_changes(["c1"], []).removed == ("c1",)


def test_what_a_schema_change_breaks() -> None:
    changes = [
        SchemaChange("gone", SchemaChangeType.REMOVED, "INT64", None),
        SchemaChange("typed", SchemaChangeType.TYPE_CHANGED, "INT64", "STRING"),
        SchemaChange("new", SchemaChangeType.ADDED, None, "INT64"),
        SchemaChange("opt", SchemaChangeType.NULLABLE_CHANGED, "false", "true"),
    ]
    columns = broken_columns(changes)
    assert columns == {"gone", "typed"}
    assert code_mentions('df["gone"].sum()', columns)
    assert code_mentions("df[['typed']]", columns)
    assert not code_mentions("df['gone_too'] + gone", columns)
    assert not code_mentions("df[\"gone']", columns)  # quotes must match
    assert code_mentions("df['a.b']", {"a.b"}) and not code_mentions("df['axb']", {"a.b"})
    assert reads_broken("return 'x'", ("gone",), columns)
    assert not reads_broken("return 'x'", ("new",), columns)
    assert not code_mentions("df['gone']", set())

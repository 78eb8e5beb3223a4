"""The pure rules of revision history: which fields changed, and snapshots that turn back
into what they were taken from."""

from __future__ import annotations

from datetime import UTC, datetime

from tilegraph.domain.dashboards import (
    DashboardRecord,
    FilterDefinition,
    FilterType,
    Layout,
    LayoutItem,
)
from tilegraph.domain.revisions import (
    RevisionChange,
    dashboard_snapshot,
    expiry,
    field_changes,
    filters_of,
    layout_of,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_a_first_revision_has_no_changes() -> None:
    assert field_changes(None, {"name": "a"}) == ()


def test_changes_name_each_field_that_differs_in_snapshot_order() -> None:
    before = {"name": "a", "code": "x", "params": {"k": 1}, "old": True}
    after = {"name": "b", "code": "x", "params": {"k": 2}}
    assert field_changes(before, after) == (
        RevisionChange("name", "a", "b"),
        RevisionChange("params", {"k": 1}, {"k": 2}),
        RevisionChange("old", True, None),
    )
    assert field_changes(after, dict(after)) == ()


def test_a_dashboard_snapshot_turns_back_into_its_layout_and_filters() -> None:
    layout = Layout(
        columns=10,
        row_height=80,
        items=(
            LayoutItem("card_1", 0, 0, 4, 2, added_by="usr_1"),
            LayoutItem("card_2", 4, 0, 6, 3),
        ),
    )
    filters = (
        FilterDefinition("f1", FilterType.CATEGORY, "region", "Region", True, ("a", "b")),
        FilterDefinition("f2", FilterType.NUMBER_RANGE, "amount", "Amount"),
    )
    record = DashboardRecord(
        id="dash_1",
        owner_id="usr_1",
        name="Board",
        description=None,
        layout=layout,
        filters=filters,
        created_at=NOW,
        updated_at=NOW,
    )
    snapshot = dashboard_snapshot(record)
    assert snapshot["layout"]["items"][0] == {"cardId": "card_1", "x": 0, "y": 0, "w": 4, "h": 2}
    # Who placed a card is not part of the input shape: a restore decides it anew.
    assert layout_of(snapshot) == Layout(
        columns=10,
        row_height=80,
        items=(LayoutItem("card_1", 0, 0, 4, 2), LayoutItem("card_2", 4, 0, 6, 3)),
    )
    assert tuple(filters_of(snapshot)) == filters


def test_a_deleted_objects_history_expires_after_the_retention() -> None:
    assert expiry(NOW, 30) == datetime(2026, 12, 31, 12, 0, tzinfo=UTC)

"""Revisions: every saved state of a card, dashboard or transform, as the snapshot of its
create input, with the fields that changed against the state before. History is appended,
never rewritten: a restore is one more revision that says which one it brought back."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from tilegraph.domain.cards import CardRecord
from tilegraph.domain.dashboards import DashboardRecord, FilterDefinition, Layout, LayoutItem
from tilegraph.domain.datasets import DatasetRecord
from tilegraph.domain.errors import BadUserInput
from tilegraph.domain.transforms import TransformRecord


class RevisionObjectType(Enum):
    CARD = "CARD"
    DASHBOARD = "DASHBOARD"
    TRANSFORM = "TRANSFORM"


@dataclass(frozen=True)
class RevisionChange:
    field: str
    before: Any
    after: Any


@dataclass(frozen=True)
class RevisionRecord:
    """`owner_id`: the object's owner (who lists it among deleted objects); `author_id`: who
    made this state. `deleted_at`: set on an object's last revision while it is deleted."""

    id: str
    object_type: RevisionObjectType
    object_id: str
    owner_id: str
    number: int
    snapshot: dict[str, Any]
    changes: tuple[RevisionChange, ...]
    author_id: str | None
    created_at: datetime
    restored_from: int | None = None
    deleted_at: datetime | None = None

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None


def field_changes(
    before: Mapping[str, Any] | None, after: Mapping[str, Any]
) -> tuple[RevisionChange, ...]:
    """The fields whose values differ, in the snapshot's order (then any the new one
    dropped); none for a first revision."""
    if before is None:
        return ()
    names = [*after, *(name for name in before if name not in after)]
    return tuple(
        RevisionChange(name, before.get(name), after.get(name))
        for name in names
        if before.get(name) != after.get(name)
    )


def check_datasets_remain(
    number: int, dataset_ids: list[str], found: Mapping[str, DatasetRecord], owner_id: str
) -> None:
    """A restore of revision `number` needs every dataset it read, still its owner's."""
    missing = [i for i in dataset_ids if i not in found or found[i].owner_id != owner_id]
    if missing:
        raise BadUserInput(
            f"Revision {number} reads dataset {missing[0]}, which no longer exists", field="id"
        )


def expiry(deleted_at: datetime, retention_days: int) -> datetime:
    """When a deleted object's revisions go."""
    return deleted_at + timedelta(days=retention_days)


# ---------------------------------------------------------------- snapshots


def card_snapshot(card: CardRecord) -> dict[str, Any]:
    """A card as CreateCardInput."""
    return {
        "name": card.name,
        "description": card.description,
        "type": card.type.value,
        "code": card.code,
        "datasetIds": list(card.dataset_ids),
        "params": card.params,
        "workspaceKey": card.workspace_key,
    }


def transform_snapshot(transform: TransformRecord) -> dict[str, Any]:
    """A transform as CreateTransformInput."""
    return {
        "name": transform.name,
        "inputDatasetIds": list(transform.input_dataset_ids),
        "code": transform.code,
        "scheduleCron": transform.schedule_cron,
        "scheduleEnabled": transform.schedule_enabled,
        "params": transform.params,
        "workspaceKey": transform.workspace_key,
    }


def layout_snapshot(layout: Layout) -> dict[str, Any]:
    return {
        "columns": layout.columns,
        "rowHeight": layout.row_height,
        "items": [
            {"cardId": i.card_id, "x": i.x, "y": i.y, "w": i.w, "h": i.h} for i in layout.items
        ],
    }


def filter_snapshot(definition: FilterDefinition) -> dict[str, Any]:
    return {
        "id": definition.id,
        "type": definition.type.value,
        "column": definition.column,
        "label": definition.label,
        "multiSelect": definition.multi_select,
        "options": list(definition.options) if definition.options is not None else None,
    }


def dashboard_snapshot(dashboard: DashboardRecord) -> dict[str, Any]:
    """A dashboard as CreateDashboardInput, with the default view UpdateDashboardInput sets."""
    return {
        "name": dashboard.name,
        "description": dashboard.description,
        "layout": layout_snapshot(dashboard.layout),
        "filters": [filter_snapshot(f) for f in dashboard.filters],
        "defaultFilterViewId": dashboard.default_filter_view_id,
        "workspaceKey": dashboard.workspace_key,
    }


def layout_of(snapshot: Mapping[str, Any]) -> Layout:
    """The layout a dashboard snapshot holds (who placed each card is decided on restore)."""
    layout = snapshot.get("layout") or {}
    return Layout(
        columns=int(layout.get("columns", 12)),
        row_height=int(layout.get("rowHeight", 100)),
        items=tuple(
            LayoutItem(card_id=i["cardId"], x=i["x"], y=i["y"], w=i["w"], h=i["h"])
            for i in layout.get("items", [])
        ),
    )


def filters_of(snapshot: Mapping[str, Any]) -> list[FilterDefinition]:
    return [
        FilterDefinition.from_item(
            {
                "id": f["id"],
                "type": f["type"],
                "column": f["column"],
                "label": f["label"],
                "multi_select": f.get("multiSelect", False),
                "options": f.get("options"),
            }
        )
        for f in snapshot.get("filters") or []
    ]

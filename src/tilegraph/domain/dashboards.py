"""Dashboards, their layout and filters, shares and saved filter views, with the pure
rules that govern them."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from tilegraph.domain.errors import BadUserInput
from tilegraph.domain.filters import FilterType
from tilegraph.domain.permissions import PermissionLevel, highest

MAX_GRID_COLUMNS = 48
MAX_LAYOUT_ITEMS = 200
MAX_FILTERS = 50


class ShareTargetType(StrEnum):
    USER = "USER"
    GROUP = "GROUP"


@dataclass(frozen=True)
class LayoutItem:
    card_id: str
    x: int
    y: int
    w: int
    h: int
    # Who put the card here: a card is lent only where its owner placed it (card_lent).
    added_by: str | None = None

    def to_item(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "card_id": self.card_id,
            "x": self.x,
            "y": self.y,
            "w": self.w,
            "h": self.h,
        }
        if self.added_by is not None:
            item["added_by"] = self.added_by
        return item

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> LayoutItem:
        return cls(
            str(item["card_id"]),
            int(item["x"]),
            int(item["y"]),
            int(item["w"]),
            int(item["h"]),
            item.get("added_by"),
        )


@dataclass(frozen=True)
class Layout:
    columns: int = 12
    row_height: int = 100
    items: tuple[LayoutItem, ...] = ()

    @property
    def card_ids(self) -> list[str]:
        return list(dict.fromkeys(item.card_id for item in self.items))

    def placers_of(self, card_id: str) -> set[str | None]:
        return {item.added_by for item in self.items if item.card_id == card_id}

    def placed_by(self, caller: str, current: Layout | None = None) -> Layout:
        """This layout as `caller` saves it: a card already in `current` keeps who placed
        it there; every other card counts as placed by the caller."""
        kept: dict[str, str | None] = {}
        for item in current.items if current else ():
            kept.setdefault(item.card_id, item.added_by)
        items = tuple(replace(item, added_by=kept.get(item.card_id, caller)) for item in self.items)
        return replace(self, items=items)

    def to_item(self) -> dict[str, Any]:
        return {
            "columns": self.columns,
            "row_height": self.row_height,
            "items": [i.to_item() for i in self.items],
        }

    @classmethod
    def from_item(cls, item: dict[str, Any] | None) -> Layout:
        if not item:
            return cls()
        return cls(
            int(item.get("columns", 12)),
            int(item.get("row_height", 100)),
            tuple(LayoutItem.from_item(i) for i in item.get("items", [])),
        )


@dataclass(frozen=True)
class FilterDefinition:
    id: str
    type: FilterType
    column: str
    label: str
    multi_select: bool = False
    options: tuple[str, ...] | None = None

    def to_item(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type.value,
            "column": self.column,
            "label": self.label,
            "multi_select": self.multi_select,
            "options": list(self.options) if self.options is not None else None,
        }

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> FilterDefinition:
        options = item.get("options")
        return cls(
            str(item["id"]),
            FilterType(item["type"]),
            str(item["column"]),
            str(item["label"]),
            bool(item.get("multi_select", False)),
            tuple(options) if options is not None else None,
        )


@dataclass(frozen=True)
class DashboardRecord:
    id: str
    owner_id: str
    name: str
    description: str | None
    layout: Layout
    filters: tuple[FilterDefinition, ...]
    created_at: datetime
    updated_at: datetime
    default_filter_view_id: str | None = None
    # Matches the object with its files in a workspace directory; unique per owner.
    workspace_key: str | None = None
    version: int = 1

    def with_changes(self, **changes: Any) -> DashboardRecord:
        return replace(self, **changes)


@dataclass(frozen=True)
class ShareRecord:
    id: str
    dashboard_id: str
    target_type: ShareTargetType
    target_id: str
    permission: PermissionLevel
    shared_by: str
    created_at: datetime
    version: int = 1


@dataclass(frozen=True)
class FilterViewRecord:
    id: str
    dashboard_id: str
    owner_id: str
    name: str
    filter_state: dict[str, Any]
    is_shared: bool
    is_default: bool
    created_at: datetime
    updated_at: datetime
    version: int = 1


# ---------------------------------------------------------------- rules


def share_id(dashboard_id: str, target_id: str) -> str:
    """One share per dashboard and target: the id is derived from both, so a duplicate
    share collides on insert instead of needing a separate uniqueness check."""
    digest = hashlib.sha256(f"{dashboard_id}|{target_id}".encode()).hexdigest()[:26]
    return f"share_{digest}"


def new_filter_id() -> str:
    return "f_" + secrets.token_hex(6)


def check_layout(layout: Layout) -> Layout:
    if not 1 <= layout.columns <= MAX_GRID_COLUMNS:
        raise BadUserInput(
            f"The grid must have 1 to {MAX_GRID_COLUMNS} columns", field="layout.columns"
        )
    if layout.row_height < 1:
        raise BadUserInput("The row height must be at least 1", field="layout.rowHeight")
    if len(layout.items) > MAX_LAYOUT_ITEMS:
        raise BadUserInput(
            f"At most {MAX_LAYOUT_ITEMS} cards fit on a dashboard", field="layout.items"
        )
    for index, item in enumerate(layout.items):
        where = f"layout.items[{index}]"
        if item.w < 1 or item.h < 1:
            raise BadUserInput("Width and height must be at least 1", field=where)
        if item.x < 0 or item.y < 0 or item.x + item.w > layout.columns:
            raise BadUserInput(
                f"The card does not fit in the {layout.columns}-column grid", field=where
            )
    return layout


def check_filters(filters: Iterable[FilterDefinition]) -> tuple[FilterDefinition, ...]:
    checked = tuple(filters)
    if len(checked) > MAX_FILTERS:
        raise BadUserInput(f"At most {MAX_FILTERS} filters", field="filters")
    ids = [f.id for f in checked]
    if len(ids) != len(set(ids)):
        raise BadUserInput("Filter ids must be unique", field="filters")
    for flt in checked:
        if not flt.column.strip() or not flt.label.strip():
            raise BadUserInput("A filter needs a column and a label", field="filters")
    return checked


def check_filter_state(state: Any, filters: tuple[FilterDefinition, ...]) -> dict[str, Any]:
    """Keys are the dashboard's filter ids; values a string, a list of strings, or
    {start, end} with string bounds."""
    if not isinstance(state, dict):
        raise BadUserInput("filterState must be an object keyed by filter id", field="filterState")
    known = {f.id for f in filters}
    unknown = sorted(set(state) - known)
    if unknown:
        raise BadUserInput(f"Unknown filter id {unknown[0]!r}", field="filterState")
    for key, value in state.items():
        if value is None or isinstance(value, str):
            continue
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            continue
        if (
            isinstance(value, dict)
            and set(value) <= {"start", "end"}
            and all(v is None or isinstance(v, str) for v in value.values())
        ):
            continue
        raise BadUserInput(
            f"The value for filter {key!r} must be a string, a list of strings or {{start, end}}",
            field="filterState",
        )
    return state


@dataclass(frozen=True)
class Standing:
    """What one user holds on one dashboard, before combining."""

    is_owner: bool = False
    direct: PermissionLevel | None = None
    via_groups: tuple[PermissionLevel, ...] = field(default_factory=tuple)


def resolve_level(standing: Standing) -> PermissionLevel | None:
    """owner → OWNER; else the highest of the direct share and every group share."""
    if standing.is_owner:
        return PermissionLevel.OWNER
    return highest([standing.direct, *standing.via_groups])


def standing_of(
    user_id: str, group_ids: Iterable[str], owner_id: str, shares: Iterable[ShareRecord]
) -> Standing:
    groups = set(group_ids)
    direct = None
    via: list[PermissionLevel] = []
    for share in shares:
        if share.target_type is ShareTargetType.USER and share.target_id == user_id:
            direct = share.permission
        elif share.target_type is ShareTargetType.GROUP and share.target_id in groups:
            via.append(share.permission)
    return Standing(owner_id == user_id, direct, tuple(via))


def card_lent(
    *,
    card_owner: str,
    dashboard_owner: str,
    placers: set[str | None],
    card_owner_level: PermissionLevel | None,
) -> bool:
    """Whether a dashboard lends a card to the people it is shared with: only where the
    card's owner put it. That is their own dashboard, or one where they placed the card
    themselves and still hold EDITOR. A share granted to the card's owner, or a copy made
    by anyone else, lends nothing of theirs."""
    if card_owner == dashboard_owner:
        return True
    return (
        card_owner in placers
        and card_owner_level is not None
        and card_owner_level.allows(PermissionLevel.EDITOR)
    )

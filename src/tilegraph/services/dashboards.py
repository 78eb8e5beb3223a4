"""Dashboards: listing, CRUD, clone, the cards a caller sees on one, and running every card
at once. The level a caller needs is checked by the permission directive before these run.
Shares and filter views have their own services."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from tilegraph.domain.cards import CardExecutionRecord, CardRecord, CardType
from tilegraph.domain.clock import to_iso, utcnow
from tilegraph.domain.dashboards import (
    DashboardRecord,
    FilterDefinition,
    Layout,
    check_filters,
    check_layout,
)
from tilegraph.domain.errors import BadUserInput, Conflict
from tilegraph.domain.filters import ColumnFilter
from tilegraph.domain.ids import new_id
from tilegraph.domain.lineage import placement_changes
from tilegraph.domain.paging import check_first
from tilegraph.domain.permissions import PermissionLevel
from tilegraph.domain.revisions import (
    RevisionObjectType,
    RevisionRecord,
    dashboard_snapshot,
    filters_of,
    layout_of,
)
from tilegraph.domain.users import Principal
from tilegraph.domain.validation import check_description, check_name
from tilegraph.services.access import DashboardAccess
from tilegraph.services.cards import CardService
from tilegraph.services.datasets import DatasetService
from tilegraph.services.policies import PolicyService
from tilegraph.services.revision_log import RevisionLog
from tilegraph.services.workspace_keys import unique_workspace_key
from tilegraph.store.dashboards import DashboardRepository
from tilegraph.store.dynamo import ConditionFailed, Stale
from tilegraph.store.pagination import Page, decode_cursor, encode_cursor
from tilegraph.store.placements import PlacementRepository, placement_ops


def _cursor(record: DashboardRecord) -> str:
    """The list is merged in memory, so a cursor is the position key of its last item,
    in the same encoding as the store's cursors."""
    return encode_cursor({"created_at": {"S": to_iso(record.created_at)}, "id": {"S": record.id}})


def _position(cursor: str) -> tuple[str, str]:
    key = decode_cursor(cursor)
    try:
        return str(key["created_at"]["S"]), str(key["id"]["S"])
    except KeyError as exc:
        raise BadUserInput("The cursor is not valid", field="after") from exc


class DashboardService:
    def __init__(
        self,
        dashboards: DashboardRepository,
        cards: CardService,
        datasets: DatasetService,
        policies: PolicyService,
        history: RevisionLog,
        placements: PlacementRepository,
    ) -> None:
        self.history = history
        self.placements = placements
        self.dashboards = dashboards
        self.cards = cards
        self.datasets = datasets
        self.policies = policies
        # What else goes with a dashboard (its deliveries), by dashboard id.
        self.on_delete: list[Callable[[str], Awaitable[None]]] = []

    # ------------------------------------------------------------------ reading

    async def list_page(
        self, principal: Principal, access: DashboardAccess, first: int, after: str | None
    ) -> Page[DashboardRecord]:
        """Owned, shared directly and shared through groups; each once, newest first."""
        check_first(first)
        owned = await self.dashboards.owned_by(principal.user_id)
        group_ids = await access.loaders.groups_of_user.load(principal.user_id)
        share_lists = await asyncio.gather(
            *(self.dashboards.shares_for_target(t) for t in [principal.user_id, *group_ids])
        )
        shared_ids = {s.dashboard_id for shares in share_lists for s in shares}
        shared_ids -= {d.id for d in owned}
        found = await self.dashboards.get_many(sorted(shared_ids))
        records = owned + list(found.values())
        records.sort(key=lambda d: (to_iso(d.created_at), d.id), reverse=True)
        start = 0
        if after:
            position = _position(after)
            start = next(
                (i + 1 for i, d in enumerate(records) if (to_iso(d.created_at), d.id) == position),
                len(records),
            )
        page = records[start : start + first]

        async def count() -> int:
            return len(records)

        return Page(
            page, [_cursor(d) for d in page], start + first < len(records), start > 0, count
        )

    async def visible_cards(
        self, principal: Principal, dashboard: DashboardRecord, access: DashboardAccess
    ) -> list[CardRecord]:
        """The layout's cards the caller may see, in layout order, each once."""
        records = await access.loaders.cards.load_many(dashboard.layout.card_ids)
        visible = []
        for card in records:
            if card is None:
                continue
            if card.owner_id == principal.user_id or await access.card_on_dashboard(
                principal, card, dashboard
            ):
                visible.append(card)
        return visible

    async def filter_values(
        self,
        principal: Principal,
        access: DashboardAccess,
        dashboard_id: str,
        column: str,
        *,
        search: str | None,
        limit: int,
    ) -> list[str]:
        """A filter's options for this caller: the column's values in the datasets of the
        cards the dashboard lends them, never anything else of the owner's, and only from
        the rows and columns each dataset's policies let them see."""
        dashboard = await access.require(principal, dashboard_id, PermissionLevel.VIEWER)
        cards = await self.visible_cards(principal, dashboard, access)
        ids = list(dict.fromkeys(d for card in cards for d in card.dataset_ids))
        datasets = [d for d in await access.loaders.datasets.load_many(ids) if d is not None]
        seen = await self.policies.access_to(datasets, principal.user_id, access.loaders)
        return await self.datasets.values_across(datasets, column, search, limit, seen)

    # ------------------------------------------------------------------ changing

    async def _check_layout_cards(
        self, principal: Principal, layout: Layout, current: DashboardRecord | None
    ) -> None:
        """Cards must be the caller's own, or already on this dashboard."""
        allowed = set(current.layout.card_ids) if current else set()
        found = await self.cards.cards.get_many(layout.card_ids)
        for index, item in enumerate(layout.items):
            card = found.get(item.card_id)
            if card is None or (card.owner_id != principal.user_id and item.card_id not in allowed):
                raise BadUserInput(
                    f"No such card: {item.card_id}", field=f"layout.items[{index}].cardId"
                )

    async def create(
        self,
        principal: Principal,
        *,
        name: str,
        description: str | None,
        layout: Layout | None,
        filters: list[FilterDefinition] | None,
        workspace_key: str | None = None,
    ) -> DashboardRecord:
        layout = check_layout(layout or Layout()).placed_by(principal.user_id)
        await self._check_layout_cards(principal, layout, None)
        workspace_key = await self._unique_key(principal.user_id, workspace_key, None)
        now = utcnow()
        record = DashboardRecord(
            id=new_id("dash"),
            owner_id=principal.user_id,
            name=check_name(name),
            description=check_description(description),
            layout=layout,
            filters=check_filters(filters or []),
            created_at=now,
            updated_at=now,
            workspace_key=workspace_key,
        )
        await self._create(principal, record)
        return record

    async def _create(self, principal: Principal, record: DashboardRecord) -> None:
        first = self.history.first(
            RevisionObjectType.DASHBOARD,
            record.id,
            record.owner_id,
            dashboard_snapshot(record),
            principal.user_id,
        )
        await self._write_new(record, [first])

    async def _write_new(self, record: DashboardRecord, steps: list[dict[str, Any]]) -> None:
        """The new dashboard with `steps` (its revision) and its cards' placements."""
        placed = placement_ops(record.id, placement_changes([], record.layout.card_ids))
        await self.placements.written_with(
            placed, steps, lambda also: self.dashboards.create(record, also=also)
        )

    async def update(
        self,
        principal: Principal,
        access: DashboardAccess,
        dashboard_id: str,
        *,
        name: str | None,
        description: str | None,
        layout: Layout | None,
        filters: list[FilterDefinition] | None,
        default_view_id: str | None,
        clear_default_view: bool,
        expected_version: int | None,
        workspace_key: str | None = None,
        workspace_key_given: bool = False,
    ) -> DashboardRecord:
        """``workspace_key_given`` with ``workspace_key`` None clears the key; it is unique
        among the dashboard owner's dashboards, whoever (an EDITOR) sets it."""
        dashboard = await access.checked(dashboard_id)
        if expected_version is not None and expected_version != dashboard.version:
            raise Conflict(
                "The dashboard was changed by someone else; reload it",
                field="expectedVersion",
                currentVersion=dashboard.version,
            )
        changes: dict[str, Any] = {"updated_at": to_iso(utcnow())}
        if name is not None:
            changes["name"] = check_name(name)
        if description is not None:
            changes["description"] = check_description(description)
        if layout is not None:
            check_layout(layout)
            await self._check_layout_cards(principal, layout, dashboard)
            changes["layout"] = layout.placed_by(principal.user_id, dashboard.layout).to_item()
        if filters is not None:
            changes["filters"] = [f.to_item() for f in check_filters(filters)]
        if default_view_id is not None:
            view = (await self.dashboards.get_views([default_view_id])).get(default_view_id)
            if view is None or view.dashboard_id != dashboard.id or not view.is_shared:
                raise BadUserInput(
                    "The default view must be a shared view of this dashboard",
                    field="defaultFilterViewId",
                )
            changes["default_filter_view_id"] = default_view_id
        elif clear_default_view:
            changes["default_filter_view_id"] = None
        if workspace_key_given and workspace_key != dashboard.workspace_key:
            changes["workspace_key"] = await self._unique_key(
                dashboard.owner_id, workspace_key, dashboard.id
            )
        return await self._save(principal, dashboard, changes)

    async def _save(
        self,
        principal: Principal,
        dashboard: DashboardRecord,
        changes: dict[str, Any],
        restored_from: int | None = None,
    ) -> DashboardRecord:
        """One write of the dashboard, conditional on the version read, and, when its saved
        state changes (or on a restore), its next revision."""
        saved = self.dashboards.applied(dashboard, changes)
        steps = await self.history.saving(
            RevisionObjectType.DASHBOARD,
            dashboard.id,
            dashboard.owner_id,
            dashboard_snapshot(saved),
            principal.user_id,
            restored_from=restored_from,
        )
        moved = placement_changes(dashboard.layout.card_ids, saved.layout.card_ids)
        try:
            return await self.placements.written_with(
                placement_ops(dashboard.id, moved),
                steps,
                lambda also: self.dashboards.update(
                    dashboard, changes, dashboard.version, also=also
                ),
            )
        except Stale as exc:
            raise Conflict(
                "The dashboard was changed by someone else; reload it", field="expectedVersion"
            ) from exc

    async def _unique_key(
        self, owner_id: str, key: str | None, dashboard_id: str | None
    ) -> str | None:
        return await unique_workspace_key(
            key,
            lambda k: self.dashboards.with_workspace_key(owner_id, k),
            this_id=dashboard_id,
            what="dashboard",
        )

    async def delete(self, principal: Principal, access: DashboardAccess, dashboard_id: str) -> str:
        dashboard = await access.checked(dashboard_id)
        steps, expires = await self.history.deleting(dashboard.id)
        removed = placement_ops(dashboard.id, placement_changes(dashboard.layout.card_ids, []))
        try:
            await self.placements.written_with(
                removed, steps, lambda also: self.dashboards.delete(dashboard.id, also=also)
            )
        except ConditionFailed as exc:
            raise Conflict("The dashboard changed meanwhile; try again") from exc
        await self.history.deleted(dashboard.id, expires)
        for cleanup in self.on_delete:
            await cleanup(dashboard.id)
        return dashboard.id

    async def restore(
        self,
        principal: Principal,
        access: DashboardAccess,
        revision: RevisionRecord,
        latest: RevisionRecord,
    ) -> DashboardRecord:
        """The dashboard as `revision` had it, saved as its next revision, by an EDITOR or
        more; a deleted one comes back with its id (without its shares and views), for its
        owner. BAD_USER_INPUT naming a card the restorer may no longer place."""
        snapshot = revision.snapshot
        layout = check_layout(layout_of(snapshot))
        filters = check_filters(filters_of(snapshot))
        current = await access.loaders.dashboards.load(revision.object_id)
        key = await self._unique_key(
            revision.owner_id, snapshot.get("workspaceKey"), revision.object_id
        )
        if current is None:
            await self._check_layout_cards(principal, layout, None)
            now = utcnow()
            record = DashboardRecord(
                id=revision.object_id,
                owner_id=revision.owner_id,
                name=snapshot["name"],
                description=snapshot.get("description"),
                layout=layout.placed_by(principal.user_id),
                filters=filters,
                created_at=now,
                updated_at=now,
                workspace_key=key,
            )
            steps = await self.history.recreating(
                latest, dashboard_snapshot(record), principal.user_id, restored_from=revision.number
            )
            try:
                await self._write_new(record, steps)
            except ConditionFailed as exc:
                raise Conflict("The dashboard was restored meanwhile") from exc
            return record
        await self._check_layout_cards(principal, layout, current)
        view_id = snapshot.get("defaultFilterViewId")
        if view_id is not None:  # a view deleted since is not brought back
            view = (await self.dashboards.get_views([view_id])).get(view_id)
            view_id = view_id if view is not None and view.is_shared else None
        changes: dict[str, Any] = {
            "updated_at": to_iso(utcnow()),
            "name": snapshot["name"],
            "description": snapshot.get("description"),
            "layout": layout.placed_by(principal.user_id, current.layout).to_item(),
            "filters": [f.to_item() for f in filters],
            "default_filter_view_id": view_id,
            "workspace_key": key,
        }
        return await self._save(principal, current, changes, restored_from=revision.number)

    async def clone(
        self, principal: Principal, access: DashboardAccess, dashboard_id: str, name: str | None
    ) -> DashboardRecord:
        source = await access.checked(dashboard_id)
        now = utcnow()
        record = DashboardRecord(
            id=new_id("dash"),
            owner_id=principal.user_id,
            name=check_name(name) if name else check_name(f"{source.name} (Copy)"),
            description=source.description,
            # The copy is the cloner's layout: it lends nobody else's cards (card_lent).
            layout=source.layout.placed_by(principal.user_id),
            filters=source.filters,
            created_at=now,
            updated_at=now,
        )
        await self._create(principal, record)
        return record

    # ------------------------------------------------------------------ running

    async def execute(
        self,
        principal: Principal,
        access: DashboardAccess,
        dashboard_id: str,
        *,
        filters: list[ColumnFilter],
        use_cache: bool,
    ) -> list[CardExecutionRecord]:
        """Every code card of the dashboard, started at once, in layout order. Runs count
        against the caller's allowance one by one: those past it end CANCELLED (the
        message says why) and the rest run; RATE_LIMITED when none fits."""
        dashboard = await access.checked(dashboard_id)
        cards = [
            c
            for c in await self.visible_cards(principal, dashboard, access)
            if c.type is CardType.CODE
        ]
        return await self.cards.start_cards(
            principal,
            cards,
            access=access,
            dashboard_id=dashboard.id,
            filters=filters,
            params=None,
            use_cache=use_cache,
            partial=True,
        )

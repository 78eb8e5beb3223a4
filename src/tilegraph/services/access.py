"""Who holds what on a dashboard, memoised for one request (or one subscription event):
owner → OWNER; else the highest of the direct share and every group share; else none."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable, Sequence
from typing import Protocol, TypeVar

from tilegraph.domain.cards import CardRecord
from tilegraph.domain.dashboards import (
    DashboardRecord,
    FilterViewRecord,
    ShareRecord,
    card_lent,
    resolve_level,
    standing_of,
)
from tilegraph.domain.datasets import DatasetRecord
from tilegraph.domain.deliveries import DeliveryRecord
from tilegraph.domain.errors import Forbidden, NotFound
from tilegraph.domain.permissions import PermissionLevel
from tilegraph.domain.policies import DatasetPolicyRecord
from tilegraph.domain.users import Principal, UserRecord

NO_SUCH_DASHBOARD = "No such dashboard"

T_co = TypeVar("T_co", covariant=True)


class Loads(Protocol[T_co]):
    """A loader: the keys asked for in one tick fetched together, each memoised."""

    def load(self, key: str) -> Awaitable[T_co]: ...

    def load_many(self, keys: Iterable[str]) -> Awaitable[Sequence[T_co]]: ...


class RequestLoaders(Protocol):
    """The loaders of one request (or subscription event) as services read them, so each
    record is read once however many fields ask; `tilegraph.loaders.Loaders` is one."""

    @property
    def dashboards(self) -> Loads[DashboardRecord | None]: ...

    @property
    def shares(self) -> Loads[ShareRecord | None]: ...

    @property
    def filter_views(self) -> Loads[FilterViewRecord | None]: ...

    @property
    def cards(self) -> Loads[CardRecord | None]: ...

    @property
    def datasets(self) -> Loads[DatasetRecord | None]: ...

    @property
    def shares_of_dashboard(self) -> Loads[list[ShareRecord]]: ...

    @property
    def views_of_dashboard(self) -> Loads[list[FilterViewRecord]]: ...

    @property
    def groups_of_user(self) -> Loads[list[str]]: ...

    @property
    def users(self) -> Loads[UserRecord | None]: ...

    @property
    def policies_of_dataset(self) -> Loads[list[DatasetPolicyRecord]]: ...

    @property
    def deliveries(self) -> Loads[DeliveryRecord | None]: ...

    @property
    def deliveries_of_dashboard(self) -> Loads[list[DeliveryRecord]]: ...


class DashboardAccess:
    def __init__(self, loaders: RequestLoaders) -> None:
        self.loaders = loaders

    async def level(self, user_id: str, dashboard_id: str) -> PermissionLevel | None:
        dashboard = await self.loaders.dashboards.load(dashboard_id)
        if dashboard is None:
            return None
        return await self.level_on(user_id, dashboard)

    async def level_on(self, user_id: str, dashboard: DashboardRecord) -> PermissionLevel | None:
        if dashboard.owner_id == user_id:
            return PermissionLevel.OWNER
        shares, groups = await asyncio.gather(
            self.loaders.shares_of_dashboard.load(dashboard.id),
            self.loaders.groups_of_user.load(user_id),
        )
        return resolve_level(standing_of(user_id, groups, dashboard.owner_id, shares))

    async def prefetch(self, user_id: str, dashboard_id: str) -> None:
        """Reads what a check of this user on this dashboard needs, all at once, into the
        request's loaders: a caller that must read something else first (the card it runs)
        reads it alongside, and the check that follows costs no round trip."""
        await asyncio.gather(
            self.loaders.dashboards.load(dashboard_id),
            self.loaders.shares_of_dashboard.load(dashboard_id),
            self.loaders.groups_of_user.load(user_id),
        )

    async def checked(self, dashboard_id: str) -> DashboardRecord:
        """The dashboard of a field guarded by @requiresPermission, whose extension has
        already run `require` for this request (a loader hit, not a second check)."""
        dashboard = await self.loaders.dashboards.load(dashboard_id)
        if dashboard is None:
            raise NotFound(NO_SUCH_DASHBOARD, field="id")
        return dashboard

    async def require(
        self, principal: Principal, dashboard_id: str, needed: PermissionLevel
    ) -> DashboardRecord:
        """The dashboard, if the caller holds `needed`: NOT_FOUND when they hold nothing
        (its existence is not revealed), FORBIDDEN when they hold less."""
        dashboard = await self.loaders.dashboards.load(dashboard_id)
        level = await self.level_on(principal.user_id, dashboard) if dashboard else None
        if dashboard is None or level is None:
            raise NotFound(NO_SUCH_DASHBOARD, field="id")
        if not level.allows(needed):
            raise Forbidden(f"This needs {needed.value} on the dashboard; you are {level.value}")
        return dashboard

    async def card_on_dashboard(
        self, principal: Principal, card: CardRecord, dashboard: DashboardRecord
    ) -> bool:
        """A dashboard lends a card in its layout to whoever may see the dashboard, when
        the card's owner put it there (domain.dashboards.card_lent)."""
        if card.id not in dashboard.layout.card_ids:
            return False
        caller, publisher = await asyncio.gather(
            self.level_on(principal.user_id, dashboard), self.level_on(card.owner_id, dashboard)
        )
        return caller is not None and card_lent(
            card_owner=card.owner_id,
            dashboard_owner=dashboard.owner_id,
            placers=dashboard.layout.placers_of(card.id),
            card_owner_level=publisher,
        )

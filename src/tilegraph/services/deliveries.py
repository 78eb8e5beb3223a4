"""Deliveries: created by an EDITOR of a dashboard, changed by their owner while still one,
run on a schedule (through the tick scheduled transforms use) or by hand.

Whoever may edit the dashboard sees its deliveries; the owner alone changes, runs or
deletes one (the dashboard's OWNER may delete any). A WEBHOOK's signing secret is shown
once, at creation; WEBHOOK and SLACK URLs are shown masked after that."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from tilegraph.auth.queue_limit import QueueLimit
from tilegraph.domain.cards import CardType
from tilegraph.domain.clock import utcnow
from tilegraph.domain.dashboards import DashboardRecord
from tilegraph.domain.deliveries import (
    AlertCondition,
    DeliveryChannel,
    DeliveryContent,
    DeliveryRecord,
    DeliveryRunRecord,
    check_condition,
    check_contents,
    check_delivery_cards,
)
from tilegraph.domain.delivery_targets import check_recipients, mask_url
from tilegraph.domain.errors import BadUserInput, Conflict, Forbidden, NotFound
from tilegraph.domain.ids import new_id
from tilegraph.domain.ownership import mine
from tilegraph.domain.paging import check_first
from tilegraph.domain.permissions import PermissionLevel
from tilegraph.domain.transforms import TriggerType, check_cron, next_fire, queued_run_fields
from tilegraph.domain.users import Principal
from tilegraph.domain.validation import check_expected_version, check_name
from tilegraph.events.publisher import ExecutionEvents
from tilegraph.outbound.errors import SendFailed
from tilegraph.outbound.targets import TargetNotAllowed, check_target
from tilegraph.services.allowance import with_place
from tilegraph.services.dashboards import DashboardService
from tilegraph.services.filter_views import FilterViewService
from tilegraph.settings import Settings
from tilegraph.store.deliveries import DeliveryRepository, delivery_run_to_item
from tilegraph.store.dynamo import ConditionFailed, Stale
from tilegraph.store.pagination import Page
from tilegraph.store.queue import JobQueue

if TYPE_CHECKING:
    from tilegraph.services.access import DashboardAccess

DELIVERY_JOB = "run_delivery"
NO_SUCH_DELIVERY = "No such delivery"


@dataclass(frozen=True)
class DeliveryChanges:
    """An update: None leaves a field as it is."""

    name: str | None = None
    card_ids: list[str] | None = None
    filter_view_id: str | None = None
    filter_view_given: bool = False
    schedule_cron: str | None = None
    enabled: bool | None = None
    recipients: list[str] | None = None
    contents: list[DeliveryContent] | None = None
    condition: AlertCondition | None = None
    clear_condition: bool = False
    expected_version: int | None = None


def shown_recipients(record: DeliveryRecord) -> list[str]:
    """Email addresses as they are; a URL (it holds the secret) masked."""
    if record.channel is DeliveryChannel.EMAIL:
        return list(record.recipients)
    return [mask_url(url) for url in record.recipients]


class DeliveryService:
    def __init__(
        self,
        settings: Settings,
        deliveries: DeliveryRepository,
        dashboards: DashboardService,
        filter_views: FilterViewService,
        queue: JobQueue,
        events: ExecutionEvents,
        allowance: QueueLimit,
    ) -> None:
        self.settings = settings
        self.deliveries = deliveries
        self.dashboards = dashboards
        self.filter_views = filter_views
        self.queue = queue
        self.events = events
        self.allowance = allowance

    # ---------------------------------------------------------------- who sees what

    async def may_see(
        self, principal: Principal, access: DashboardAccess, record: DeliveryRecord
    ) -> bool:
        if record.owner_id == principal.user_id:
            return True
        level = await access.level(principal.user_id, record.dashboard_id)
        return level is not None and level.allows(PermissionLevel.EDITOR)

    async def _owned(
        self, principal: Principal, access: DashboardAccess, delivery_id: str
    ) -> DeliveryRecord:
        """The caller's own delivery, while they are still an EDITOR of its dashboard
        (FORBIDDEN once they are not); NOT_FOUND for any other."""
        record = mine(await access.loaders.deliveries.load(delivery_id), principal)
        if record is None:
            raise NotFound(NO_SUCH_DELIVERY, field="id")
        await access.require(principal, record.dashboard_id, PermissionLevel.EDITOR)
        return record

    async def list_page(
        self, principal: Principal, first: int, after: str | None
    ) -> Page[DeliveryRecord]:
        return await self.deliveries.list_page(principal.user_id, check_first(first), after)

    async def of_dashboard(
        self, access: DashboardAccess, dashboard_id: str
    ) -> list[DeliveryRecord]:
        """Newest first; the caller's EDITOR level was checked by the field's permission."""
        found = await access.loaders.deliveries_of_dashboard.load(dashboard_id)
        return sorted(found, key=lambda d: (d.created_at, d.id), reverse=True)

    async def runs_page(
        self, record: DeliveryRecord, first: int, after: str | None
    ) -> Page[DeliveryRunRecord]:
        return await self.deliveries.runs_page(record.id, check_first(first), after)

    async def last_run(self, record: DeliveryRecord) -> DeliveryRunRecord | None:
        return await self.deliveries.last_run(record.id)

    # ---------------------------------------------------------------- checks

    async def _code_cards(
        self, principal: Principal, access: DashboardAccess, dashboard: DashboardRecord
    ) -> list[str]:
        """The dashboard's code cards the caller sees, in layout order."""
        cards = await self.dashboards.visible_cards(principal, dashboard, access)
        return [c.id for c in cards if c.type is CardType.CODE]

    async def _check_view(
        self, principal: Principal, access: DashboardAccess, dashboard_id: str, view_id: str
    ) -> str:
        try:
            view = await self.filter_views.get(principal, access, view_id)
        except NotFound as exc:
            raise BadUserInput("No such filter view", field="filterViewId") from exc
        if view.dashboard_id != dashboard_id:
            raise BadUserInput("The filter view is of another dashboard", field="filterViewId")
        return view.id

    def _cron(self, expression: str) -> str:
        return check_cron(
            expression, min_interval_seconds=self.settings.schedule_min_interval_seconds
        )

    async def _recipients(self, channel: DeliveryChannel, recipients: list[str]) -> tuple[str, ...]:
        """Well-formed, and a URL's host resolving only to addresses it may be sent to (it is
        checked again at every send, as what a name resolves to can change)."""
        settings = self.settings
        checked = check_recipients(
            channel.value,
            recipients,
            allow_http=settings.is_dev,
            allowed_hosts=settings.delivery_allowed_hosts,
        )
        if channel is not DeliveryChannel.EMAIL:
            try:
                await check_target(
                    checked[0], allowed_hosts=settings.delivery_allowed_hosts, dev=settings.is_dev
                )
            except TargetNotAllowed as exc:
                raise BadUserInput(str(exc), field="recipients") from exc
            except SendFailed as exc:
                raise BadUserInput(exc.answer, field="recipients") from exc
        return tuple(checked)

    # ---------------------------------------------------------------- changes

    async def create(
        self,
        principal: Principal,
        access: DashboardAccess,
        *,
        dashboard_id: str,
        name: str,
        card_ids: list[str],
        filter_view_id: str | None,
        schedule_cron: str,
        enabled: bool,
        channel: DeliveryChannel,
        recipients: list[str],
        contents: list[DeliveryContent],
        condition: AlertCondition | None,
    ) -> tuple[DeliveryRecord, str | None]:
        """The delivery and, for a WEBHOOK, its signing secret (shown this once)."""
        dashboard = await access.require(principal, dashboard_id, PermissionLevel.EDITOR)
        placed = await self._code_cards(principal, access, dashboard)
        cron = self._cron(schedule_cron)
        now = utcnow()
        secret = secrets.token_urlsafe(32) if channel is DeliveryChannel.WEBHOOK else None
        record = DeliveryRecord(
            id=new_id("dl"),
            owner_id=principal.user_id,
            dashboard_id=dashboard.id,
            name=check_name(name),
            card_ids=check_delivery_cards(card_ids, placed),
            filter_view_id=(
                await self._check_view(principal, access, dashboard.id, filter_view_id)
                if filter_view_id
                else None
            ),
            schedule_cron=cron,
            enabled=enabled,
            channel=channel,
            recipients=await self._recipients(channel, recipients),
            contents=check_contents(contents),
            condition=check_condition(condition, placed) if condition else None,
            signing_secret=secret,
            next_run_at=next_fire(cron, now) if enabled else None,
            created_at=now,
            updated_at=now,
        )
        await self.deliveries.create(record)
        return record, secret

    async def update(
        self,
        principal: Principal,
        access: DashboardAccess,
        delivery_id: str,
        changes: DeliveryChanges,
    ) -> DeliveryRecord:
        record = await self._owned(principal, access, delivery_id)
        check_expected_version(changes.expected_version, record.version, "delivery")
        dashboard = await access.checked(record.dashboard_id)
        placed = await self._code_cards(principal, access, dashboard)
        fields: dict[str, object] = {"updated_at": utcnow()}
        if changes.name is not None:
            fields["name"] = check_name(changes.name)
        if changes.card_ids is not None:
            fields["card_ids"] = check_delivery_cards(changes.card_ids, placed)
        if changes.filter_view_given:
            view = changes.filter_view_id
            fields["filter_view_id"] = (
                await self._check_view(principal, access, dashboard.id, view) if view else None
            )
        if changes.recipients is not None and changes.recipients != shown_recipients(record):
            # The masked URL sent back as it was read leaves the real one in place.
            fields["recipients"] = await self._recipients(record.channel, changes.recipients)
        if changes.contents is not None:
            fields["contents"] = check_contents(changes.contents)
        if changes.clear_condition:
            fields["condition"] = None
        elif changes.condition is not None:
            fields["condition"] = check_condition(changes.condition, placed)
        cron = self._cron(changes.schedule_cron) if changes.schedule_cron else record.schedule_cron
        enabled = record.enabled if changes.enabled is None else changes.enabled
        if cron != record.schedule_cron or enabled != record.enabled:
            fields.update(
                schedule_cron=cron,
                enabled=enabled,
                next_run_at=next_fire(cron, utcnow()) if enabled else None,
            )
        try:
            return await self.deliveries.save(record.with_changes(**fields), record.version)
        except Stale as exc:
            raise Conflict("The delivery changed meanwhile; try again") from exc

    async def delete(self, principal: Principal, access: DashboardAccess, delivery_id: str) -> str:
        """Its owner, or the dashboard's OWNER."""
        record = await access.loaders.deliveries.load(delivery_id)
        if record is None or not await self.may_see(principal, access, record):
            raise NotFound(NO_SUCH_DELIVERY, field="id")
        if record.owner_id != principal.user_id:
            level = await access.level(principal.user_id, record.dashboard_id)
            if level is not PermissionLevel.OWNER:
                raise Forbidden("Only the delivery's owner or the dashboard's OWNER deletes it")
        try:
            await self.deliveries.delete(record.id)
        except ConditionFailed as exc:
            raise Conflict("The delivery changed meanwhile; try again") from exc
        return record.id

    # ---------------------------------------------------------------- runs

    async def run_now(
        self, principal: Principal, access: DashboardAccess, delivery_id: str
    ) -> DeliveryRunRecord:
        """A MANUAL run: it takes a place in the owner's run allowance, as a manual
        transform run does."""
        record = await self._owned(principal, access, delivery_id)
        run_id = new_id("dlr")
        return await with_place(
            self.allowance,
            principal.user_id,
            run_id,
            lambda: self.queue_run(
                record, TriggerType.MANUAL, user_id=principal.user_id, run_id=run_id
            ),
        )

    async def queue_run(
        self,
        record: DeliveryRecord,
        trigger: TriggerType,
        *,
        user_id: str | None,
        due_at: datetime | None = None,
        job_id: str | None = None,
        run_id: str | None = None,
    ) -> DeliveryRunRecord:
        """Recorded QUEUED first (the sweeper enqueues a run Redis missed), then enqueued."""
        run_id = run_id or new_id("dlr")
        run = DeliveryRunRecord(
            delivery_id=record.id,
            **queued_run_fields(run_id, record.owner_id, trigger, user_id, due_at, utcnow()),
        )
        await self.deliveries.create_run(run, job_id or run_id)
        await self.events.publish(delivery_run_to_item(run))
        # arq's own line, not the owner's sandbox turn: a run mostly waits on the cache and
        # the channel, and a card it must run takes a sandbox slot of its own then.
        await self.queue.enqueue(DELIVERY_JOB, job_id or run_id, run_id)
        return run

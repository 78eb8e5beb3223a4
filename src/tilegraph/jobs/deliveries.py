"""Delivery runs: run the cards as the delivery's owner sees them, check the alert
condition, build the message, and hand it to the channel with retries.

A run takes the delivery's lock (as a transform run does), so two never overlap. Each try
of a WEBHOOK carries the same body, signature and Idempotency-Key (the run id), so a
receiver that got a message whose answer was lost can tell the retry is the same one. The
target's addresses are checked again right before every try, against DNS rebinding."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import cache
from typing import Any

import structlog

from tilegraph.domain.audit import AuditEventType
from tilegraph.domain.cards import CardRecord, CardType
from tilegraph.domain.clock import to_iso
from tilegraph.domain.dashboards import DashboardRecord
from tilegraph.domain.deliveries import (
    MAX_DELIVERY_ATTEMPTS,
    DeliveryContent,
    DeliveryRecord,
    DeliveryRunRecord,
    attachment_names,
    delivery_failed,
    file_stem,
    retry_delay,
    skipped_delivery_error,
    target_not_allowed,
    view_filters,
)
from tilegraph.domain.executions import ExecutionError, ExecutionErrorCode, ExecutionStatus
from tilegraph.domain.filters import ColumnFilter
from tilegraph.domain.permissions import PermissionLevel
from tilegraph.domain.runs import CardRunPlan
from tilegraph.domain.transforms import TriggerType
from tilegraph.domain.users import Principal
from tilegraph.executor.plotly_asset import bundle_path
from tilegraph.jobs.cards import CardRunner
from tilegraph.jobs.lifecycle import ExecutionFailed, ExecutionRun
from tilegraph.jobs.locked_runs import LockedRuns
from tilegraph.loaders.registry import Loaders
from tilegraph.outbound.deliver import deliver
from tilegraph.outbound.errors import SendFailed
from tilegraph.outbound.http_post import new_client
from tilegraph.outbound.messages import (
    Attachment,
    CardSummary,
    DeliveryMessage,
)
from tilegraph.outbound.snapshot import build_snapshot
from tilegraph.outbound.targets import TargetNotAllowed
from tilegraph.services.access import DashboardAccess
from tilegraph.services.filter_views import FilterViewService
from tilegraph.services.registry import Services
from tilegraph.store import table_files
from tilegraph.store.deliveries import delivery_run_from_item
from tilegraph.store.executions import ExecutionTable

log = structlog.get_logger("tilegraph.deliveries")


@cache
def plotly_js() -> str:
    """The bundle an HTML snapshot inlines once (read once per process)."""
    return bundle_path().read_text(encoding="utf-8")


@dataclass(frozen=True)
class Produced:
    """One card's result within a delivery run."""

    card: CardRecord
    html: str
    metrics: dict[str, float] | None
    cache_key: str
    has_table: bool


class DeliveryRunner:
    def __init__(self, services: Services, cards: CardRunner) -> None:
        self.services = services
        self.cards = cards

    @property
    def table(self) -> ExecutionTable:
        return self.services.repos.deliveries.runs

    async def start(self, run_id: str) -> None:
        """The job: lock, run, record; or record the run as skipped."""
        repo = self.services.repos.deliveries
        runs = LockedRuns(
            self.table, "delivery_id", repo.schedules, skipped_delivery_error, lambda item: ()
        )
        await runs.start(self.services, run_id, self.run, self.finished)

    async def finished(self, run: ExecutionRun) -> None:
        await release_delivery(self.services, run.item)

    # ---------------------------------------------------------------- the run

    async def run(self, run: ExecutionRun) -> dict[str, Any]:
        services = self.services
        record = delivery_run_from_item(run.item)
        delivery = await services.repos.deliveries.get(record.delivery_id)
        if delivery is None:
            raise ExecutionFailed.unavailable("The delivery was deleted")
        principal, access, dashboard = await self._as_owner(delivery)
        filters = await self._filters(delivery, principal, access, dashboard)
        cards = await self._cards(delivery, principal, access, dashboard)
        plans = await services.cards.plan_runs(
            principal, cards, dashboard_id=dashboard.id, filters=filters, access=access
        )
        produced = await self._produce(run, plans)
        condition_value = None
        condition = delivery.condition
        if condition is not None:
            result = produced.get(condition.card_id)
            value = (result.metrics or {}).get(condition.metric) if result else None
            if value is None:
                raise ExecutionFailed.of(
                    ExecutionErrorCode.BAD_RESULT,
                    f"The condition's card returned no metric {condition.metric!r}",
                )
            condition_value = float(value)
            if not condition.holds(condition_value):
                return {"sent": False, "condition_value": condition_value, "attempts": 0}
        message = await self._message(record, delivery, dashboard, produced, condition_value)
        await run.report(progress=0.9, condition_value=condition_value, force=True)
        attempts = await self._send(run, delivery, message)
        return {"sent": True, "condition_value": condition_value, "attempts": attempts}

    async def _as_owner(
        self, delivery: DeliveryRecord
    ) -> tuple[Principal, DashboardAccess, DashboardRecord]:
        """The owner's access now: a delivery whose owner is no longer an EDITOR of the
        dashboard (or no longer an active user) sends nothing."""
        owner = await self.services.repos.users.get(delivery.owner_id)
        if owner is None or owner.disabled:
            raise ExecutionFailed.unavailable("The delivery's owner is no longer an active user")
        principal = Principal(owner.id, owner.role, jti="delivery", expires_at=0)
        access = DashboardAccess(Loaders(self.services.repos))
        level = await access.level(owner.id, delivery.dashboard_id)
        if level is None or not level.allows(PermissionLevel.EDITOR):
            raise ExecutionFailed.unavailable(
                "The delivery's owner is no longer an EDITOR of the dashboard"
            )
        return principal, access, await access.checked(delivery.dashboard_id)

    async def _filters(
        self,
        delivery: DeliveryRecord,
        principal: Principal,
        access: DashboardAccess,
        dashboard: DashboardRecord,
    ) -> list[ColumnFilter]:
        if delivery.filter_view_id is None:
            return []
        view = await access.loaders.filter_views.load(delivery.filter_view_id)
        if view is None or not await FilterViewService.may_see(principal, access, view):
            raise ExecutionFailed.unavailable("The delivery's filter view was deleted")
        return view_filters(dashboard.filters, view.filter_state)

    async def _cards(
        self,
        delivery: DeliveryRecord,
        principal: Principal,
        access: DashboardAccess,
        dashboard: DashboardRecord,
    ) -> list[CardRecord]:
        """The code cards to run that the owner still sees on the dashboard."""
        visible = await self.services.dashboards.visible_cards(principal, dashboard, access)
        code = [c for c in visible if c.type is CardType.CODE]
        wanted = set(delivery.cards_to_run(c.id for c in code))
        condition = delivery.condition
        if condition is not None and condition.card_id not in wanted:
            raise ExecutionFailed.unavailable("The condition's card is no longer on the dashboard")
        return [c for c in code if c.id in wanted]

    async def _produce(
        self, run: ExecutionRun, plans: list[tuple[CardRecord, CardRunPlan | None]]
    ) -> dict[str, Produced]:
        """Each card's result: from the cache when one is there, else run here."""
        planned = [(card, plan) for card, plan in plans if plan is not None]
        hits = await self.services.card_results.lookup_many(
            [plan.cache_key for _, plan in planned if plan.cacheable]
        )
        produced: dict[str, Produced] = {}
        for index, (card, plan) in enumerate(planned):
            hit = hits.get(plan.cache_key) if plan.cacheable else None
            if hit is not None:
                produced[card.id] = Produced(
                    card, hit.html, hit.metrics, plan.cache_key, hit.table is not None
                )
            else:
                try:
                    done, html = await self.cards.execute_plan(
                        plan, run.check_cancel, run_id=run.id
                    )
                except ExecutionFailed as exc:
                    error = exc.error
                    raise ExecutionFailed(
                        ExecutionError(
                            error.code, f"Card {card.name!r}: {error.message}", error.line
                        )
                    ) from exc
                produced[card.id] = Produced(
                    card, html, done.metrics, plan.cache_key, done.table is not None
                )
            await run.report(progress=0.8 * (index + 1) / len(planned))
        return produced

    async def _message(
        self,
        record: DeliveryRunRecord,
        delivery: DeliveryRecord,
        dashboard: DashboardRecord,
        produced: dict[str, Produced],
        condition_value: float | None,
    ) -> DeliveryMessage:
        settings = self.services.settings
        sent = [p for p in produced.values() if delivery.sends_card(p.card.id)]
        attachments = []
        if DeliveryContent.HTML_SNAPSHOT in delivery.contents:
            html = build_snapshot(
                dashboard.name,
                [(p.card.name, p.html) for p in sent],
                plotly_js=plotly_js(),
            )
            attachments.append(
                Attachment(f"{file_stem(dashboard.name)}.html", "text/html", html.encode())
            )
        if DeliveryContent.CSV in delivery.contents:
            tables = []
            for result in sent:
                table = (
                    await self.services.card_results.read_table(result.cache_key)
                    if result.has_table
                    else None
                )
                if table is not None:
                    tables.append((result.card.name, table))
            names = attachment_names((name for name, _ in tables), "csv")
            for file_name, (_, table) in zip(names, tables, strict=True):
                body = await asyncio.to_thread(table_files.to_csv, table)
                attachments.append(Attachment(file_name, "text/csv", body))
        condition = delivery.condition
        return DeliveryMessage(
            delivery_id=delivery.id,
            delivery_name=delivery.name,
            dashboard_id=dashboard.id,
            dashboard_name=dashboard.name,
            dashboard_url=f"{settings.public_url.rstrip('/')}/#/dashboards/{dashboard.id}",
            run_id=record.id,
            triggered_by=record.triggered_by.value,
            due_at=to_iso(record.due_at) if record.due_at else None,
            cards=[CardSummary(p.card.id, p.card.name, p.metrics) for p in sent],
            attachments=attachments,
            condition=(
                {
                    "metric": condition.metric,
                    "operator": condition.operator.value,
                    "threshold": condition.threshold,
                    "value": condition_value,
                }
                if condition is not None
                else None
            ),
        )

    async def _send(
        self, run: ExecutionRun, delivery: DeliveryRecord, message: DeliveryMessage
    ) -> int:
        """Tries until the channel takes the message: up to MAX_DELIVERY_ATTEMPTS, waiting
        longer each time; a permanent refusal or a target not allowed ends at once. Every
        try sends the same message (so the same body, signature and Idempotency-Key)."""
        settings = self.services.settings
        async with new_client() as client:
            for attempt in range(1, MAX_DELIVERY_ATTEMPTS + 1):
                await run.report(attempts=attempt, force=True)
                try:
                    await deliver(
                        delivery.channel.value,
                        delivery.recipients,
                        message,
                        settings=settings,
                        client=client,
                        secret=delivery.signing_secret,
                    )
                except TargetNotAllowed as exc:
                    raise ExecutionFailed(target_not_allowed(str(exc))) from exc
                except SendFailed as exc:
                    log.info(
                        "delivery_try_failed", run_id=run.id, attempt=attempt, answer=exc.answer
                    )
                    if not exc.retryable or attempt == MAX_DELIVERY_ATTEMPTS:
                        raise ExecutionFailed(delivery_failed(attempt, exc.answer)) from exc
                    await asyncio.sleep(retry_delay(attempt, settings.delivery_retry_base_seconds))
                    await run.check_cancel()
                else:
                    return attempt
        raise AssertionError("unreachable")


async def release_delivery(services: Services, item: dict[str, Any]) -> None:
    """After a run ends, however it ended (the sweeper calls this for a lost worker's run):
    the lock goes, a manual run's place in the allowance is given back, and the outcome is
    audited."""
    await services.repos.deliveries.schedules.unlock(str(item["delivery_id"]), str(item["id"]))
    await services.run_allowance.release(str(item["owner_id"]), str(item["id"]))
    record = delivery_run_from_item(item)
    details: dict[str, Any] = {"runId": record.id, "triggeredBy": record.triggered_by.value}
    if record.status is ExecutionStatus.SUCCEEDED and record.sent:
        event = AuditEventType.DELIVERY_SENT
        details["attempts"] = record.attempts
    elif record.status is ExecutionStatus.FAILED:
        event = AuditEventType.DELIVERY_FAILED
        details["code"] = record.error.code.value if record.error else None
    else:
        return
    user = record.triggered_by_user if record.triggered_by is TriggerType.MANUAL else None
    await services.audit_recorder.record(
        event, user_id=user, target_type="delivery", target_id=record.delivery_id, details=details
    )

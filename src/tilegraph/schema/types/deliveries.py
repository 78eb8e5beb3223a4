"""Deliveries, alerts and their runs."""

from __future__ import annotations

from datetime import datetime

import strawberry

from tilegraph.context import Info
from tilegraph.domain.deliveries import AlertCondition as AlertConditionRecord
from tilegraph.domain.deliveries import DeliveryRecord, DeliveryRunRecord
from tilegraph.domain.errors import NotFound
from tilegraph.schema.connections import After, Connection, First, connection_from_page
from tilegraph.schema.enums import (
    ComparisonOperator,
    DeliveryChannel,
    DeliveryContent,
    TriggerType,
)
from tilegraph.schema.fields import field
from tilegraph.schema.node import Node
from tilegraph.schema.types.cards import Card
from tilegraph.schema.types.dashboards import Dashboard, FilterView
from tilegraph.schema.types.executions import Execution, ExecutionError
from tilegraph.schema.types.users import User, load_owner
from tilegraph.schema.values import given, page_size
from tilegraph.services.deliveries import shown_recipients


async def _card(info: Info, card_id: str) -> Card:
    record = await info.context.loaders.cards.load(card_id)
    if record is None:
        raise NotFound("The card was deleted")
    return Card.from_record(record)


@strawberry.type(description="Send only when a card's metric compares true against the threshold.")
class AlertCondition:
    metric: str = strawberry.field(
        description="The name the card gives it in HTMLResult(metrics=...)."
    )
    operator: ComparisonOperator = strawberry.field(description="metric <operator> threshold.")
    threshold: float = strawberry.field(description="What the metric is compared with.")
    record: strawberry.Private[AlertConditionRecord]

    @field(description="The card whose metric is checked.")
    async def card(self, info: Info) -> Card:
        return await _card(info, self.record.card_id)

    @classmethod
    def from_record(cls, record: AlertConditionRecord) -> AlertCondition:
        return cls(
            metric=record.metric,
            operator=record.operator,
            threshold=record.threshold,
            record=record,
        )


@strawberry.type(
    description="A dashboard (or some of its cards) run on a schedule as its owner and sent to "
    "a channel. Due runs happen exactly once and never overlap, like scheduled transforms."
)
class Delivery(Node):
    name: str = strawberry.field(description="1 to 200 characters.")
    schedule_cron: str = strawberry.field(
        description="UTC cron, 5 or 6 fields, at least TILEGRAPH_SCHEDULE_MIN_INTERVAL_SECONDS "
        "apart."
    )
    enabled: bool = strawberry.field(description="Whether the schedule runs it.")
    channel: DeliveryChannel = strawberry.field(description="Where the message goes.")
    recipients: list[str] = strawberry.field(
        description="Email addresses for EMAIL; for WEBHOOK and SLACK the URL, masked after "
        "creation (https://hooks.example.com/…)."
    )
    contents: list[DeliveryContent] = strawberry.field(description="What the message holds.")
    condition: AlertCondition | None = strawberry.field(
        description="The alert's condition; null for a plain delivery (it always sends)."
    )
    next_run_at: datetime | None = strawberry.field(
        description="The next scheduled run (UTC), while enabled."
    )
    version: int = strawberry.field(
        description="Changes with every save; pass it as expectedVersion to update only what "
        "you read."
    )
    created_at: datetime = strawberry.field(description="When the delivery was created.")
    updated_at: datetime = strawberry.field(description="When it was last changed.")
    record: strawberry.Private[DeliveryRecord]

    @classmethod
    def from_record(cls, record: DeliveryRecord) -> Delivery:
        return cls(
            id=strawberry.ID(record.id),
            name=record.name,
            schedule_cron=record.schedule_cron,
            enabled=record.enabled,
            channel=record.channel,
            recipients=shown_recipients(record),
            contents=list(record.contents),
            condition=AlertCondition.from_record(record.condition) if record.condition else None,
            next_run_at=record.next_run_at if record.enabled else None,
            version=record.version,
            created_at=record.created_at,
            updated_at=record.updated_at,
            record=record,
        )

    @field(description="The dashboard it sends.")
    async def dashboard(self, info: Info) -> Dashboard:
        record = await info.context.loaders.dashboards.load(self.record.dashboard_id)
        if record is None:
            raise NotFound("The dashboard was deleted")
        return Dashboard.from_record(record)

    @field(description="Only these cards; every code card of the dashboard when empty.")
    async def cards(self, info: Info) -> list[Card]:
        records = await info.context.loaders.cards.load_many(list(self.record.card_ids))
        return [Card.from_record(r) for r in records if r is not None]

    @field(description="Filters applied to every card; none when null.")
    async def filter_view(self, info: Info) -> FilterView | None:
        if self.record.filter_view_id is None:
            return None
        view = await info.context.loaders.filter_views.load(self.record.filter_view_id)
        return FilterView.from_record(view) if view is not None else None

    @field(description="Who created it; the cards run with their access.")
    async def owner(self, info: Info) -> User:
        return await load_owner(info, self.record.owner_id)

    @field(description="The newest run; null before the first.")
    async def last_run(self, info: Info) -> DeliveryRun | None:
        run = await info.context.services.deliveries.last_run(self.record)
        return DeliveryRun.from_record(run) if run is not None else None

    @field(description="Its runs, manual and scheduled, newest first.")
    async def runs(
        self, info: Info, first: First = 20, after: After = strawberry.UNSET
    ) -> Connection[DeliveryRun]:
        page = await info.context.services.deliveries.runs_page(
            self.record, page_size(first, 20), given(after)
        )
        return connection_from_page(page, DeliveryRun.from_record)


@strawberry.type(
    description="One run of a delivery: run the cards, check the condition, send (with retries)."
)
class DeliveryRun(Execution):
    triggered_by: TriggerType = strawberry.field(description="What started the run.")
    due_at: datetime | None = strawberry.field(
        description="The schedule time this run is for (null for a manual run)."
    )
    sent: bool = strawberry.field(
        description="False when the condition did not hold: the run SUCCEEDED and nothing was sent."
    )
    condition_value: float | None = strawberry.field(
        description="The metric value the condition was checked against."
    )
    attempts: int = strawberry.field(
        description="Tries to hand the message to the channel; failures are retried with backoff."
    )
    record: strawberry.Private[DeliveryRunRecord]

    @classmethod
    def from_record(cls, record: DeliveryRunRecord) -> DeliveryRun:
        return cls(
            id=strawberry.ID(record.id),
            status=record.status,
            progress=record.progress,
            error=ExecutionError.maybe(record.error),
            queued_at=record.queued_at,
            started_at=record.started_at,
            finished_at=record.finished_at,
            triggered_by=record.triggered_by,
            due_at=record.due_at,
            sent=record.sent,
            condition_value=record.condition_value,
            attempts=record.attempts,
            record=record,
        )

    @field(description="The delivery this is a run of.")
    async def delivery(self, info: Info) -> Delivery:
        record = await info.context.loaders.deliveries.load(self.record.delivery_id)
        if record is None:
            raise NotFound("The delivery was deleted")
        return Delivery.from_record(record)


@strawberry.input(description="Send only when the card's metric compares true.")
class AlertConditionInput:
    card_id: strawberry.ID = strawberry.field(description="A code card of the dashboard.")
    metric: str = strawberry.field(description="A name in the card's HTMLResult(metrics=...).")
    operator: ComparisonOperator = strawberry.field(description="metric <operator> threshold.")
    threshold: float = strawberry.field(description="What the metric is compared with.")

    def to_record(self) -> AlertConditionRecord:
        return AlertConditionRecord(
            str(self.card_id), self.metric, self.operator, float(self.threshold)
        )


@strawberry.input(description="A new delivery; the caller must be an EDITOR of the dashboard.")
class CreateDeliveryInput:
    dashboard_id: strawberry.ID = strawberry.field(description="The dashboard to send.")
    name: str = strawberry.field(description="1 to 200 characters.")
    schedule_cron: str = strawberry.field(
        description="UTC cron, 5 or 6 fields, at least the server's minimum interval apart."
    )
    channel: DeliveryChannel = strawberry.field(description="Where the message goes.")
    recipients: list[str] = strawberry.field(
        description="EMAIL: 1 to 50 addresses. WEBHOOK, SLACK: one https URL that resolves to "
        "a public address."
    )
    card_ids: list[strawberry.ID] = strawberry.field(
        default_factory=list,
        description="Only these code cards of the dashboard; all of them when empty.",
    )
    filter_view_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET,
        description="A filter view of the dashboard applied to every card.",
    )
    enabled: bool = strawberry.field(default=True, description="Run on the schedule.")
    contents: list[DeliveryContent] = strawberry.field(
        default_factory=lambda: [DeliveryContent.SUMMARY],
        description="What the message holds.",
    )
    condition: AlertConditionInput | None = strawberry.field(
        default=strawberry.UNSET, description="Makes it an alert: send only when this holds."
    )


@strawberry.input(description="Changes to a delivery; fields left out stay as they are.")
class UpdateDeliveryInput:
    id: strawberry.ID = strawberry.field(description="The delivery.")
    name: str | None = strawberry.field(
        default=strawberry.UNSET, description="1 to 200 characters."
    )
    card_ids: list[strawberry.ID] | None = strawberry.field(
        default=strawberry.UNSET, description="Only these cards; all of them when empty."
    )
    filter_view_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET, description="A filter view of the dashboard; null removes it."
    )
    schedule_cron: str | None = strawberry.field(
        default=strawberry.UNSET, description="A new schedule."
    )
    enabled: bool | None = strawberry.field(
        default=strawberry.UNSET, description="Run on the schedule."
    )
    recipients: list[str] | None = strawberry.field(
        default=strawberry.UNSET,
        description="New recipients (checked as on create); the masked URL as read leaves the "
        "URL as it is.",
    )
    contents: list[DeliveryContent] | None = strawberry.field(
        default=strawberry.UNSET, description="What the message holds."
    )
    condition: AlertConditionInput | None = strawberry.field(
        default=strawberry.UNSET, description="A new condition."
    )
    clear_condition: bool | None = strawberry.field(
        default=strawberry.UNSET, description="Removes the condition."
    )
    expected_version: int | None = strawberry.field(
        default=strawberry.UNSET,
        description="The version you read; CONFLICT when the delivery has changed since.",
    )


@strawberry.type(description="The delivery created or changed.")
class DeliveryPayload:
    delivery: Delivery = strawberry.field(description="The delivery as saved.")
    signing_secret: str | None = strawberry.field(
        default=strawberry.UNSET,
        description="WEBHOOK only, on create: the HMAC key for X-Tilegraph-Signature, shown "
        "this once.",
    )


@strawberry.input(description="The delivery to send now.")
class RunDeliveryInput:
    id: strawberry.ID = strawberry.field(description="A delivery you own.")


@strawberry.type(description="The run started.")
class DeliveryRunPayload:
    run: DeliveryRun = strawberry.field(description="Follow it with Subscription.execution.")

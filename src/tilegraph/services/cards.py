"""Cards: CRUD for their owner, previews of draft code, runs (through the cache), and
reading results. Who may read or run a card is decided by `CardAccess`."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from tilegraph.audit.recorder import AuditRecorder
from tilegraph.auth.queue_limit import QueueLimit
from tilegraph.domain.cards import (
    CardExecutionRecord,
    CardRecord,
    CardResultRecord,
    CardType,
    card_cache_key,
)
from tilegraph.domain.clock import to_iso, utcnow
from tilegraph.domain.datasets import DatasetRecord
from tilegraph.domain.errors import BadUserInput, Conflict, NotFound, RateLimited
from tilegraph.domain.executions import ExecutionStatus
from tilegraph.domain.filters import ColumnFilter, FilterError, resolve_filters
from tilegraph.domain.ids import new_id
from tilegraph.domain.ownership import all_owned, owned
from tilegraph.domain.paging import check_first
from tilegraph.domain.users import Principal
from tilegraph.domain.validation import check_name
from tilegraph.events.publisher import ExecutionEvents
from tilegraph.settings import Settings
from tilegraph.store.card_results import CardResults
from tilegraph.store.cards import CardRepository, execution_to_item
from tilegraph.store.datasets import DatasetRepository
from tilegraph.store.dynamo import Stale
from tilegraph.store.pagination import Page
from tilegraph.store.queue import JobQueue

if TYPE_CHECKING:
    from tilegraph.services.access import DashboardAccess

CARD_JOB = "run_card"
TEXT_RESULT_PREFIX = "text:"


class CardService:
    def __init__(
        self,
        settings: Settings,
        cards: CardRepository,
        datasets: DatasetRepository,
        results: CardResults,
        queue: JobQueue,
        events: ExecutionEvents,
        audit: AuditRecorder,
        queue_limit: QueueLimit,
    ) -> None:
        self.settings = settings
        self.cards = cards
        self.datasets = datasets
        self.results = results
        self.queue = queue
        self.events = events
        self.audit = audit
        self.queue_limit = queue_limit

    # ------------------------------------------------------------------ access

    async def readable(
        self,
        principal: Principal,
        card: CardRecord,
        dashboard_id: str | None = None,
        access: DashboardAccess | None = None,
    ) -> bool:
        """The owner reads a card; so do VIEWERs of a dashboard that holds it (named in
        the request), when the dashboard lends it (see DashboardAccess)."""
        if card.owner_id == principal.user_id:
            return True
        if dashboard_id is None or access is None:
            return False
        dashboard = await access.loaders.dashboards.load(dashboard_id)
        return dashboard is not None and await access.card_on_dashboard(principal, card, dashboard)

    async def get_readable(
        self,
        principal: Principal,
        card_id: str,
        dashboard_id: str | None = None,
        access: DashboardAccess | None = None,
    ) -> CardRecord:
        card = await self.cards.get(card_id)
        if card is None or not await self.readable(principal, card, dashboard_id, access):
            raise NotFound("No such card", field="id")
        return card

    async def get_owned(self, principal: Principal, card_id: str) -> CardRecord:
        return owned(await self.cards.get(card_id), principal, "card")

    async def list_page(
        self, principal: Principal, first: int, after: str | None
    ) -> Page[CardRecord]:
        return await self.cards.list_page(principal.user_id, check_first(first), after)

    async def _own_datasets(
        self, principal: Principal, dataset_ids: list[str]
    ) -> list[DatasetRecord]:
        found = await self.datasets.get_many(dataset_ids)
        return all_owned(found, dataset_ids, principal, "dataset", field="datasetIds")

    def _check_code(self, code: str, card_type: CardType) -> str:
        if len(code.encode()) > self.settings.max_code_bytes:
            raise BadUserInput(
                f"The code is larger than {self.settings.max_code_bytes} bytes", field="code"
            )
        if card_type is CardType.CODE and not code.strip():
            raise BadUserInput("The code is empty", field="code")
        return code

    # ------------------------------------------------------------------ CRUD

    async def create(
        self,
        principal: Principal,
        *,
        name: str,
        description: str | None,
        card_type: CardType,
        code: str,
        dataset_ids: list[str],
        params: dict[str, Any] | None,
    ) -> CardRecord:
        name = check_name(name)
        self._check_code(code, card_type)
        if card_type is CardType.CODE and not dataset_ids:
            raise BadUserInput("A code card needs at least one dataset", field="datasetIds")
        await self._own_datasets(principal, dataset_ids)
        now = utcnow()
        card = CardRecord(
            id=new_id("card"),
            owner_id=principal.user_id,
            name=name,
            description=description,
            type=card_type,
            code=code,
            dataset_ids=tuple(dataset_ids),
            params=params,
            created_at=now,
            updated_at=now,
        )
        await self.cards.create(card)
        return card

    async def update(
        self,
        principal: Principal,
        card_id: str,
        *,
        name: str | None,
        description: str | None,
        code: str | None,
        dataset_ids: list[str] | None,
        params: dict[str, Any] | None,
        params_given: bool,
    ) -> CardRecord:
        card = await self.get_owned(principal, card_id)
        changes: dict[str, Any] = {"updated_at": to_iso(utcnow())}
        if name is not None:
            changes["name"] = check_name(name)
        if description is not None:
            changes["description"] = description
        if code is not None:
            changes["code"] = self._check_code(code, card.type)
            if code != card.code:  # what the old code used says nothing about the new
                changes.update(used_columns=[], filter_applicable=[], learned_from=None)
        if dataset_ids is not None:
            await self._own_datasets(principal, dataset_ids)
            changes["dataset_ids"] = dataset_ids
        if params_given:
            changes["params"] = params
        try:
            return await self.cards.update(card, changes)
        except Stale as exc:
            raise Conflict("The card changed meanwhile; try again") from exc

    async def delete(self, principal: Principal, card_id: str) -> str:
        card = await self.get_owned(principal, card_id)
        await self.cards.delete(card.id)
        return card.id

    # ------------------------------------------------------------------ runs

    async def preview(
        self,
        principal: Principal,
        *,
        code: str,
        dataset_ids: list[str],
        filters: list[ColumnFilter],
        params: dict[str, Any] | None,
    ) -> CardExecutionRecord:
        self._check_code(code, CardType.CODE)
        datasets = await self._own_datasets(principal, dataset_ids)
        return await self._start(
            principal,
            card=None,
            code=code,
            datasets=datasets,
            filters=filters,
            params=params,
            use_cache=True,
            dashboard_id=None,
        )

    async def execute(
        self,
        principal: Principal,
        card_id: str,
        *,
        dashboard_id: str | None,
        access: DashboardAccess | None,
        filters: list[ColumnFilter],
        params: dict[str, Any] | None,
        use_cache: bool,
    ) -> CardExecutionRecord:
        card = await self.get_readable(principal, card_id, dashboard_id, access)
        return await self.start_card(
            principal,
            card,
            dashboard_id=dashboard_id,
            filters=filters,
            params=params,
            use_cache=use_cache,
        )

    async def start_card(
        self,
        principal: Principal,
        card: CardRecord,
        *,
        dashboard_id: str | None,
        filters: list[ColumnFilter],
        params: dict[str, Any] | None,
        use_cache: bool,
        check_queue: bool = True,
    ) -> CardExecutionRecord:
        found = await self.datasets.get_many(list(card.dataset_ids))
        datasets = [found[i] for i in card.dataset_ids if i in found]
        merged = {**(card.params or {}), **(params or {})} if (card.params or params) else None
        return await self._start(
            principal,
            card=card,
            code=card.code,
            datasets=datasets,
            filters=filters,
            params=merged,
            use_cache=use_cache,
            dashboard_id=dashboard_id,
            check_queue=check_queue,
        )

    async def _start(
        self,
        principal: Principal,
        *,
        card: CardRecord | None,
        code: str,
        datasets: list[DatasetRecord],
        filters: list[ColumnFilter],
        params: dict[str, Any] | None,
        use_cache: bool,
        dashboard_id: str | None,
        check_queue: bool = True,
    ) -> CardExecutionRecord:
        column_types: dict[str, str] = {}
        for dataset in reversed(datasets):  # the first dataset's type wins
            column_types.update({c.name: c.type.value for c in dataset.columns})
        try:
            _, ignored = resolve_filters(filters, column_types)
        except FilterError as exc:
            raise BadUserInput(str(exc), field="filters") from exc
        filter_items = [f.to_item() for f in filters]
        record = CardExecutionRecord(
            id=new_id("cex"),
            owner_id=principal.user_id,
            status=ExecutionStatus.QUEUED,
            queued_at=utcnow(),
            dataset_ids=tuple(d.id for d in datasets),
            card_id=card.id if card else None,
            dashboard_id=dashboard_id,
            code=None if card else code,
            params=params,
            filters=filter_items,
            use_cache=use_cache,
        )
        if card is not None and card.type is CardType.TEXT:
            return await self._finish_now(
                record,
                CardResultRecord(
                    cache_key=TEXT_RESULT_PREFIX + card.id,
                    used_columns=(),
                    filter_applicable=(),
                    ignored_filters=tuple(ignored),
                    cached=False,
                    execution_time_ms=0.0,
                ),
            )
        cache_key = card_cache_key(
            code, params, filter_items, [(d.id, d.version) for d in datasets]
        )
        if use_cache and all(d.version > 0 for d in datasets):
            hit = await self.results.lookup(cache_key)
            if hit is not None:
                return await self._finish_now(
                    record,
                    CardResultRecord(
                        cache_key=cache_key,
                        used_columns=tuple(hit.used_columns),
                        filter_applicable=tuple(hit.filter_applicable),
                        ignored_filters=tuple(ignored),
                        cached=True,
                        execution_time_ms=hit.execution_time_ms,
                    ),
                )
        if not check_queue:
            await self.queue_limit.add(principal.user_id, record.id)
        elif not await self.queue_limit.admit(principal.user_id, record.id):
            raise RateLimited(
                f"You already have {self.settings.max_queued_cards_per_user} card runs waiting; "
                "wait for them to finish"
            )
        await self.cards.create_execution(record)
        await self.queue.enqueue(CARD_JOB, record.id, record.id)
        return record

    async def _finish_now(
        self, record: CardExecutionRecord, result: CardResultRecord
    ) -> CardExecutionRecord:
        now = utcnow()
        done = replace(
            record,
            status=ExecutionStatus.SUCCEEDED,
            started_at=now,
            finished_at=now,
            progress=1.0,
            result=result,
        )
        await self.cards.create_execution(done)
        await self.events.publish(execution_to_item(done))
        return done

    async def get_execution(self, principal: Principal, execution_id: str) -> CardExecutionRecord:
        return owned(await self.cards.get_execution(execution_id), principal, "card execution")

    async def result_html(self, result: CardResultRecord) -> str:
        if result.cache_key.startswith(TEXT_RESULT_PREFIX):
            card = await self.cards.get(result.cache_key[len(TEXT_RESULT_PREFIX) :])
            return card.code if card else ""
        return await self.results.html(result.cache_key) or ""

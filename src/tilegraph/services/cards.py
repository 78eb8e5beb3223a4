"""Cards: CRUD for their owner, previews of draft code, runs (through the cache), and
reading results. Who may read or run a card is decided by `CardAccess`."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tilegraph.audit.recorder import AuditRecorder
from tilegraph.auth.queue_limit import QueueLimit
from tilegraph.domain.cards import (
    MAX_CARD_DATASETS,
    CardExecutionRecord,
    CardRecord,
    CardResultRecord,
    CardType,
)
from tilegraph.domain.clock import to_iso, utcnow
from tilegraph.domain.datasets import DatasetRecord
from tilegraph.domain.errors import (
    BadUserInput,
    Conflict,
    NotFound,
)
from tilegraph.domain.executions import ExecutionError, ExecutionErrorCode, ExecutionStatus
from tilegraph.domain.filters import ColumnFilter, FilterError
from tilegraph.domain.ids import new_id
from tilegraph.domain.ownership import all_owned, owned
from tilegraph.domain.paging import check_first
from tilegraph.domain.policies import EffectiveAccess
from tilegraph.domain.revisions import (
    RevisionObjectType,
    RevisionRecord,
    card_snapshot,
    check_datasets_remain,
)
from tilegraph.domain.runs import CardRunPlan, Learned, RunLimits, plan_card_run
from tilegraph.domain.users import Principal
from tilegraph.domain.validation import (
    check_count,
    check_description,
    check_expected_version,
    check_name,
    check_params,
)
from tilegraph.events.inline import InlineBudget
from tilegraph.events.publisher import ExecutionEvents
from tilegraph.services.allowance import take_places
from tilegraph.services.policies import PolicyService
from tilegraph.services.revision_log import RevisionLog
from tilegraph.services.workspace_keys import unique_workspace_key
from tilegraph.settings import Settings
from tilegraph.store.card_results import CachedCard, CardResults
from tilegraph.store.cards import CardRepository, execution_event
from tilegraph.store.datasets import DatasetRepository
from tilegraph.store.dynamo import ConditionFailed, Stale
from tilegraph.store.fair_queue import FairTurn
from tilegraph.store.pagination import Page
from tilegraph.store.queue import JobQueue

if TYPE_CHECKING:
    from tilegraph.services.access import DashboardAccess

CARD_JOB = "run_card"
TEXT_RESULT_PREFIX = "text:"


@dataclass(frozen=True)
class _Admission:
    """One run about to be admitted: its card (None for a preview), inputs and plan."""

    card: CardRecord | None
    datasets: list[DatasetRecord]
    plan: CardRunPlan | None  # None for a TEXT card
    ignored_filters: tuple[str, ...]

    def immediate_result(self, hits: dict[str, CachedCard]) -> CardResultRecord | None:
        """The result when no run is needed: a TEXT card's text, or a cache hit."""
        if self.plan is None:
            card_id = self.card.id if self.card else ""
            return CardResultRecord(
                cache_key=TEXT_RESULT_PREFIX + card_id,
                used_columns=(),
                filter_applicable=(),
                ignored_filters=self.ignored_filters,
                cached=False,
                execution_time_ms=0.0,
                html=self.card.code if self.card else "",
            )
        hit = hits.get(self.plan.cache_key) if self.plan.cacheable else None
        if hit is None:
            return None
        return CardResultRecord(
            cache_key=self.plan.cache_key,
            used_columns=tuple(hit.used_columns),
            filter_applicable=tuple(hit.filter_applicable),
            ignored_filters=self.ignored_filters,
            cached=True,
            execution_time_ms=hit.execution_time_ms,
            html=hit.html,
            metrics=hit.metrics,
            table=hit.table,
        )


def inline_sizes(records: list[CardExecutionRecord], limit: int) -> dict[str, int]:
    """The HTML sizes of the records whose events could carry their HTML."""
    sizes = {}
    for record in records:
        if record.result is not None and record.result.html is not None:
            size = len(record.result.html.encode())
            if size <= limit:
                sizes[record.id] = size
    return sizes


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
        inline_html: InlineBudget,
        policies: PolicyService,
        history: RevisionLog,
    ) -> None:
        self.history = history
        self.settings = settings
        self.cards = cards
        self.datasets = datasets
        self.results = results
        self.queue = queue
        self.events = events
        self.audit = audit
        self.queue_limit = queue_limit
        self.inline_html = inline_html
        self.policies = policies

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
        if dashboard_id is not None and access is not None:
            # Through a dashboard: what its check reads is read alongside the card.
            card, _ = await asyncio.gather(
                self.cards.get(card_id), access.prefetch(principal.user_id, dashboard_id)
            )
        else:
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
        check_count(dataset_ids, MAX_CARD_DATASETS, field="datasetIds", what="datasets")
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
        workspace_key: str | None = None,
    ) -> CardRecord:
        name = check_name(name)
        description = check_description(description)
        params = check_params(params)
        self._check_code(code, card_type)
        if card_type is CardType.CODE and not dataset_ids:
            raise BadUserInput("A code card needs at least one dataset", field="datasetIds")
        await self._own_datasets(principal, dataset_ids)
        workspace_key = await self._unique_key(principal.user_id, workspace_key, None)
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
            workspace_key=workspace_key,
        )
        first = self.history.first(
            RevisionObjectType.CARD, card.id, card.owner_id, card_snapshot(card), principal.user_id
        )
        await self.cards.create(card, also=[first])
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
        workspace_key: str | None = None,
        workspace_key_given: bool = False,
        expected_version: int | None = None,
    ) -> CardRecord:
        """``workspace_key_given`` with ``workspace_key`` None clears the key."""
        card = await self.get_owned(principal, card_id)
        check_expected_version(expected_version, card.version, "card")
        changes: dict[str, Any] = {"updated_at": to_iso(utcnow())}
        if name is not None:
            changes["name"] = check_name(name)
        if description is not None:
            changes["description"] = check_description(description)
        if code is not None:
            changes["code"] = self._check_code(code, card.type)
            if code != card.code:  # what the old code used says nothing about the new
                changes.update(
                    used_columns=[], filter_applicable=[], learned_from=None, unprojected_for=None
                )
        if dataset_ids is not None:
            await self._own_datasets(principal, dataset_ids)
            changes["dataset_ids"] = dataset_ids
        if params_given:
            changes["params"] = check_params(params)
        if workspace_key_given and workspace_key != card.workspace_key:
            changes["workspace_key"] = await self._unique_key(card.owner_id, workspace_key, card.id)
        return await self._save(principal, card, changes)

    async def _save(
        self,
        principal: Principal,
        card: CardRecord,
        changes: dict[str, Any],
        restored_from: int | None = None,
    ) -> CardRecord:
        """One write of the card and, when its saved state changes (or on a restore), its
        next revision."""
        steps = await self.history.saving(
            RevisionObjectType.CARD,
            card.id,
            card.owner_id,
            card_snapshot(self.cards.applied(card, changes)),
            principal.user_id,
            restored_from=restored_from,
        )
        try:
            return await self.cards.update(card, changes, also=steps)
        except Stale as exc:
            raise Conflict("The card changed meanwhile; try again") from exc

    async def _unique_key(self, owner_id: str, key: str | None, card_id: str | None) -> str | None:
        return await unique_workspace_key(
            key,
            lambda k: self.cards.with_workspace_key(owner_id, k),
            this_id=card_id,
            what="card",
        )

    async def delete(self, principal: Principal, card_id: str) -> str:
        card = await self.get_owned(principal, card_id)
        steps, expires = await self.history.deleting(card.id)
        try:
            await self.cards.delete(card.id, also=steps)
        except ConditionFailed as exc:
            raise Conflict("The card changed meanwhile; try again") from exc
        await self.history.deleted(card.id, expires)
        return card.id

    async def restore(
        self,
        principal: Principal,
        revision: RevisionRecord,
        latest: RevisionRecord,
    ) -> CardRecord:
        """The card as `revision` had it, saved as its next revision; a deleted card comes
        back with its id. Its owner only; BAD_USER_INPUT when a dataset it read is gone."""
        snapshot = revision.snapshot
        dataset_ids = list(snapshot.get("datasetIds") or [])
        found = await self.datasets.get_many(dataset_ids)
        check_datasets_remain(revision.number, dataset_ids, found, principal.user_id)
        current = await self.cards.get(revision.object_id)
        key = await self._unique_key(
            revision.owner_id, snapshot.get("workspaceKey"), revision.object_id
        )
        if current is None:
            return await self._recreate(principal, revision, latest, key)
        owned(current, principal, "card")
        changes: dict[str, Any] = {
            "updated_at": to_iso(utcnow()),
            "name": snapshot["name"],
            "description": snapshot.get("description"),
            "code": snapshot["code"],
            "dataset_ids": dataset_ids,
            "params": snapshot.get("params"),
            "workspace_key": key,
        }
        if snapshot["code"] != current.code:
            changes.update(
                used_columns=[], filter_applicable=[], learned_from=None, unprojected_for=None
            )
        return await self._save(principal, current, changes, restored_from=revision.number)

    async def _recreate(
        self,
        principal: Principal,
        revision: RevisionRecord,
        latest: RevisionRecord,
        workspace_key: str | None,
    ) -> CardRecord:
        snapshot = revision.snapshot
        now = utcnow()
        card = CardRecord(
            id=revision.object_id,
            owner_id=revision.owner_id,
            name=snapshot["name"],
            description=snapshot.get("description"),
            type=CardType(snapshot.get("type", CardType.CODE.value)),
            code=snapshot["code"],
            dataset_ids=tuple(snapshot.get("datasetIds") or []),
            params=snapshot.get("params"),
            created_at=now,
            updated_at=now,
            workspace_key=workspace_key,
        )
        steps = await self.history.recreating(
            latest, card_snapshot(card), principal.user_id, restored_from=revision.number
        )
        try:
            await self.cards.create(card, also=steps)
        except ConditionFailed as exc:
            raise Conflict("The card was restored meanwhile") from exc
        return card

    # ------------------------------------------------------------------ runs

    def _plan(
        self,
        card: CardRecord | None,
        code: str,
        datasets: list[DatasetRecord],
        filters: list[ColumnFilter],
        params: dict[str, Any] | None,
        use_cache: bool,
        access: dict[str, EffectiveAccess] | None = None,
    ) -> CardRunPlan:
        settings = self.settings
        try:
            return plan_card_run(
                card_id=card.id if card else None,
                learned=(
                    Learned(card.used_columns, card.learned_from, card.unprojected_for)
                    if card
                    else None
                ),
                code=code,
                datasets=datasets,
                filters=filters,
                params=params,
                use_cache=use_cache,
                limits=RunLimits(
                    settings.card_timeout_seconds,
                    settings.card_memory_bytes,
                    settings.card_output_max_bytes,
                    settings.card_table_max_bytes,
                ),
                access=access,
            )
        except FilterError as exc:
            raise BadUserInput(str(exc), field="filters") from exc

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
        params = check_params(params)
        datasets = await self._own_datasets(principal, dataset_ids)
        plan = self._plan(None, code, datasets, filters, params, True)
        (record,) = await self._admit(
            principal, [_Admission(None, datasets, plan, ())], dashboard_id=None, partial=False
        )
        return record

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
        params = check_params(params)
        card = await self.get_readable(principal, card_id, dashboard_id, access)
        (record,) = await self.start_cards(
            principal,
            [card],
            access=access,
            dashboard_id=dashboard_id,
            filters=filters,
            params=params,
            use_cache=use_cache,
            partial=False,
        )
        return record

    async def start_cards(
        self,
        principal: Principal,
        cards: list[CardRecord],
        *,
        dashboard_id: str | None,
        filters: list[ColumnFilter],
        params: dict[str, Any] | None,
        use_cache: bool,
        partial: bool,
        access: DashboardAccess | None = None,
    ) -> list[CardExecutionRecord]:
        """Plans and admits runs of the given cards together: one read of all their
        datasets, one cache lookup, one write of the records, one publication. With
        `partial`, the runs past the user's allowance end CANCELLED instead of refusing
        the whole request (see `_take_allowance`)."""
        admissions = await self._plan_cards(
            principal,
            cards,
            dashboard_id=dashboard_id,
            filters=filters,
            params=params,
            use_cache=use_cache,
            access=access,
        )
        return await self._admit(principal, admissions, dashboard_id=dashboard_id, partial=partial)

    async def plan_runs(
        self,
        principal: Principal,
        cards: list[CardRecord],
        *,
        dashboard_id: str,
        filters: list[ColumnFilter],
        access: DashboardAccess,
    ) -> list[tuple[CardRecord, CardRunPlan | None]]:
        """What a run of each card as `principal` would execute (None for a TEXT card),
        without starting it: a delivery runs its cards inside its own run."""
        admissions = await self._plan_cards(
            principal,
            cards,
            dashboard_id=dashboard_id,
            filters=filters,
            params=None,
            use_cache=True,
            access=access,
        )
        return [(a.card, a.plan) for a in admissions if a.card is not None]

    async def _plan_cards(
        self,
        principal: Principal,
        cards: list[CardRecord],
        *,
        dashboard_id: str | None,
        filters: list[ColumnFilter],
        params: dict[str, Any] | None,
        use_cache: bool,
        access: DashboardAccess | None,
    ) -> list[_Admission]:
        """One read of all the cards' datasets. A caller who does not own a dataset reads
        it as its policies say, frozen into the plan."""
        dataset_ids = list(dict.fromkeys(d for card in cards for d in card.dataset_ids))
        found = await self.datasets.get_many(dataset_ids) if dataset_ids else {}
        # The dashboard check already read the caller's groups: reuse them.
        group_ids = (
            await access.loaders.groups_of_user.load(principal.user_id)
            if access is not None and dashboard_id is not None
            else None
        )
        # Another owner's card reads that owner's datasets: the caller reads them as their
        # policies say.
        seen = await self.policies.reader_access(
            principal, list(found.values()), group_ids=group_ids
        )
        admissions = []
        for card in cards:
            datasets = [found[i] for i in card.dataset_ids if i in found]
            if card.type is CardType.TEXT:
                known = {
                    c.name
                    for d in datasets
                    for c in d.columns
                    if d.id not in seen or c.name not in seen[d.id].hidden_columns
                }
                ignored = tuple(f.column for f in filters if f.column not in known)
                admissions.append(_Admission(card, datasets, None, ignored))
                continue
            merged = {**(card.params or {}), **(params or {})} if (card.params or params) else None
            plan = self._plan(card, card.code, datasets, filters, merged, use_cache, seen)
            admissions.append(_Admission(card, datasets, plan, plan.ignored_filters))
        return admissions

    async def _admit(
        self,
        principal: Principal,
        admissions: list[_Admission],
        *,
        dashboard_id: str | None,
        partial: bool,
    ) -> list[CardExecutionRecord]:
        """Cache hits and TEXT cards end at once; the rest are queued, as far as the user's
        allowance goes. QUEUED is published before the job exists, so no worker event can be
        overtaken by it."""
        now = utcnow()
        cacheable = [a.plan.cache_key for a in admissions if a.plan and a.plan.cacheable]
        hits = await self.results.lookup_many(cacheable)
        records: list[CardExecutionRecord] = []
        for admission in admissions:
            record = CardExecutionRecord(
                id=new_id("cex"),
                owner_id=principal.user_id,
                status=ExecutionStatus.QUEUED,
                queued_at=now,
                dataset_ids=tuple(d.id for d in admission.datasets),
                card_id=admission.card.id if admission.card else None,
                dashboard_id=dashboard_id,
                plan=admission.plan,
            )
            result = admission.immediate_result(hits)
            if result is not None:
                record = replace(
                    record,
                    plan=None,  # nothing will execute it: a smaller record to write
                    status=ExecutionStatus.SUCCEEDED,
                    started_at=now,
                    finished_at=now,
                    progress=1.0,
                    result=result,
                )
            records.append(record)
        waiting = [r for r in records if r.status is ExecutionStatus.QUEUED]
        if waiting:
            refused = await self._take_allowance(principal, waiting, partial=partial)
            records = [self._not_started(r, now) if r.id in refused else r for r in records]
        queued = [r for r in records if r.status is ExecutionStatus.QUEUED]
        await self.cards.create_executions(records)
        limit = self.settings.event_inline_html_bytes
        inline = await self.inline_html.allow(principal.user_id, inline_sizes(records, limit))
        await self.events.publish_many(
            [(execution_event(r, limit if r.id in inline else 0), ()) for r in records]
        )
        await asyncio.gather(
            *(
                self.queue.enqueue(
                    CARD_JOB,
                    r.id,
                    r.id,
                    r.plan.to_item() if r.plan else None,
                    turn=FairTurn(r.owner_id, r.plan.limits.output_max_bytes if r.plan else 0),
                )
                for r in queued
            )
        )
        return records

    async def _take_allowance(
        self, principal: Principal, waiting: list[CardExecutionRecord], *, partial: bool
    ) -> set[str]:
        """Takes the user's allowance for the runs that fit, in order; returns the ids of
        those that did not. RATE_LIMITED when none fits (or, unless `partial`, not all)."""
        ids = [r.id for r in waiting]
        taken = await take_places(self.queue_limit, principal.user_id, ids, partial=partial)
        return set(ids[taken:])

    def _not_started(self, record: CardExecutionRecord, now: datetime) -> CardExecutionRecord:
        """A run past the allowance: recorded as ended before it started, and why."""
        return replace(
            record,
            plan=None,
            status=ExecutionStatus.CANCELLED,
            finished_at=now,
            error=ExecutionError(
                ExecutionErrorCode.CANCELLED,
                f"Not started: you already have {self.settings.max_queued_cards_per_user} "
                "runs waiting (the most a user may have); run it again when they finish",
            ),
        )

    async def get_execution(self, principal: Principal, execution_id: str) -> CardExecutionRecord:
        return owned(await self.cards.get_execution(execution_id), principal, "card execution")

    async def result_html(self, result: CardResultRecord) -> str:
        if result.html is not None:
            return result.html
        if result.cache_key.startswith(TEXT_RESULT_PREFIX):
            card = await self.cards.get(result.cache_key[len(TEXT_RESULT_PREFIX) :])
            return card.code if card else ""
        return await self.results.html(result.cache_key) or ""

"""Transforms: CRUD and runs for their owner, schedules validated with croniter, and the
queueing shared by manual runs and the scheduler.

A manual run takes a place in the owner's run allowance (the one card runs use); a
scheduled run does not: the owner set it up once, the schedule's minimum interval and the
one-run-at-a-time lock already bound how many there can be, and refusing it would skip a run
nobody is there to retry. Both wait in the owner's fair queue, so neither delays other users'
runs by more than their turn."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tilegraph.auth.queue_limit import QueueLimit
from tilegraph.domain.clock import utcnow
from tilegraph.domain.errors import BadUserInput, Conflict
from tilegraph.domain.ids import new_id
from tilegraph.domain.ownership import all_owned, owned
from tilegraph.domain.paging import check_first
from tilegraph.domain.revisions import (
    RevisionObjectType,
    RevisionRecord,
    check_datasets_remain,
    transform_snapshot,
)
from tilegraph.domain.transforms import (
    MAX_TRANSFORM_INPUTS,
    TransformRecord,
    TransformRunRecord,
    TriggerType,
    check_cron,
    next_fire,
    queued_run_fields,
)
from tilegraph.domain.users import Principal
from tilegraph.domain.validation import (
    check_count,
    check_expected_version,
    check_name,
    check_params,
)
from tilegraph.events.channels import transform_runs_channel
from tilegraph.events.publisher import ExecutionEvents
from tilegraph.services.allowance import with_place
from tilegraph.services.revision_log import RevisionLog
from tilegraph.services.workspace_keys import unique_workspace_key
from tilegraph.settings import Settings
from tilegraph.store.datasets import DatasetRepository
from tilegraph.store.dynamo import ConditionFailed, Stale
from tilegraph.store.fair_queue import FairTurn
from tilegraph.store.pagination import Page
from tilegraph.store.queue import JobQueue
from tilegraph.store.transforms import TransformRepository, run_to_item

TRANSFORM_JOB = "run_transform"


class TransformService:
    def __init__(
        self,
        settings: Settings,
        transforms: TransformRepository,
        datasets: DatasetRepository,
        queue: JobQueue,
        events: ExecutionEvents,
        allowance: QueueLimit,
        history: RevisionLog,
    ) -> None:
        self.history = history
        self.settings = settings
        self.transforms = transforms
        self.datasets = datasets
        self.queue = queue
        self.events = events
        self.allowance = allowance

    async def get_owned(self, principal: Principal, transform_id: str) -> TransformRecord:
        return owned(await self.transforms.get(transform_id), principal, "transform")

    async def list_page(
        self, principal: Principal, first: int, after: str | None
    ) -> Page[TransformRecord]:
        return await self.transforms.list_page(principal.user_id, check_first(first), after)

    async def get_run(self, principal: Principal, run_id: str) -> TransformRunRecord:
        return owned(await self.transforms.get_run(run_id), principal, "transform execution")

    async def runs_page(
        self, transform: TransformRecord, first: int, after: str | None
    ) -> Page[TransformRunRecord]:
        return await self.transforms.runs_page(transform.id, check_first(first), after)

    async def _check_inputs(self, principal: Principal, dataset_ids: list[str]) -> None:
        if not dataset_ids:
            raise BadUserInput(
                "A transform needs at least one input dataset", field="inputDatasetIds"
            )
        check_count(
            dataset_ids, MAX_TRANSFORM_INPUTS, field="inputDatasetIds", what="input datasets"
        )
        found = await self.datasets.get_many(dataset_ids)
        all_owned(found, dataset_ids, principal, "dataset", field="inputDatasetIds")

    def _check_code(self, code: str) -> str:
        if not code.strip():
            raise BadUserInput("The code is empty", field="code")
        if len(code.encode()) > self.settings.max_code_bytes:
            raise BadUserInput(
                f"The code is larger than {self.settings.max_code_bytes} bytes", field="code"
            )
        return code

    def _schedule(
        self, cron: str | None, enabled: bool
    ) -> tuple[str | None, bool, datetime | None]:
        """(cron, enabled, next run) after the rules: enabling needs a valid cron."""
        checked = None
        if cron is not None and cron.strip():
            checked = check_cron(
                cron, min_interval_seconds=self.settings.schedule_min_interval_seconds
            )
        if enabled and checked is None:
            raise BadUserInput(
                "Give a cron expression to enable the schedule", field="scheduleEnabled"
            )
        next_run = next_fire(checked, utcnow()) if enabled and checked else None
        return checked, enabled, next_run

    async def create(
        self,
        principal: Principal,
        *,
        name: str,
        input_dataset_ids: list[str],
        code: str,
        schedule_cron: str | None,
        schedule_enabled: bool,
        params: Any = None,
        workspace_key: str | None = None,
    ) -> TransformRecord:
        name = check_name(name)
        params = check_params(params)
        await self._check_inputs(principal, input_dataset_ids)
        workspace_key = await self._unique_key(principal.user_id, workspace_key, None)
        cron, enabled, next_run = self._schedule(schedule_cron, schedule_enabled)
        now = utcnow()
        record = TransformRecord(
            id=new_id("tf"),
            owner_id=principal.user_id,
            name=name,
            input_dataset_ids=tuple(input_dataset_ids),
            code=self._check_code(code),
            created_at=now,
            updated_at=now,
            schedule_cron=cron,
            schedule_enabled=enabled,
            next_run_at=next_run,
            params=params,
            workspace_key=workspace_key,
        )
        first = self.history.first(
            RevisionObjectType.TRANSFORM,
            record.id,
            record.owner_id,
            transform_snapshot(record),
            principal.user_id,
        )
        await self.transforms.create(record, also=[first])
        return record

    async def update(
        self,
        principal: Principal,
        transform_id: str,
        *,
        name: str | None,
        input_dataset_ids: list[str] | None,
        code: str | None,
        schedule_cron: str | None,
        cron_given: bool,
        schedule_enabled: bool | None,
        params: Any = None,
        params_given: bool = False,
        workspace_key: str | None = None,
        workspace_key_given: bool = False,
        expected_version: int | None = None,
    ) -> TransformRecord:
        """``params_given`` with ``params`` None clears them; likewise the workspace key."""
        record = await self.get_owned(principal, transform_id)
        check_expected_version(expected_version, record.version, "transform")
        changes: dict[str, object] = {"updated_at": utcnow()}
        if name is not None:
            changes["name"] = check_name(name)
        if input_dataset_ids is not None:
            await self._check_inputs(principal, input_dataset_ids)
            changes["input_dataset_ids"] = tuple(input_dataset_ids)
        if code is not None:
            changes["code"] = self._check_code(code)
        if params_given:
            changes["params"] = check_params(params)
        if workspace_key_given and workspace_key != record.workspace_key:
            changes["workspace_key"] = await self._unique_key(
                record.owner_id, workspace_key, record.id
            )
        cron = schedule_cron if cron_given else record.schedule_cron
        enabled = record.schedule_enabled if schedule_enabled is None else schedule_enabled
        if cron != record.schedule_cron or enabled != record.schedule_enabled:
            checked, enabled, next_run = self._schedule(cron, enabled)
            changes.update(schedule_cron=checked, schedule_enabled=enabled, next_run_at=next_run)
        return await self._save(principal, record, record.with_changes(**changes))

    async def _save(
        self,
        principal: Principal,
        record: TransformRecord,
        changed: TransformRecord,
        restored_from: int | None = None,
    ) -> TransformRecord:
        """One write of what the owner edits, conditional on the version read, and, when
        its saved state changes (or on a restore), its next revision."""
        steps = await self.history.saving(
            RevisionObjectType.TRANSFORM,
            record.id,
            record.owner_id,
            transform_snapshot(changed),
            principal.user_id,
            restored_from=restored_from,
        )
        try:
            return await self.transforms.save(changed, record.version, also=steps)
        except Stale as exc:
            raise Conflict("The transform changed meanwhile; try again") from exc

    async def _unique_key(
        self, owner_id: str, key: str | None, transform_id: str | None
    ) -> str | None:
        return await unique_workspace_key(
            key,
            lambda k: self.transforms.with_workspace_key(owner_id, k),
            this_id=transform_id,
            what="transform",
        )

    async def delete(self, principal: Principal, transform_id: str) -> str:
        """The output dataset stays: it belongs to the owner, like any other dataset."""
        record = await self.get_owned(principal, transform_id)
        steps, expires = await self.history.deleting(record.id)
        try:
            await self.transforms.delete(record.id, also=steps)
        except ConditionFailed as exc:
            raise Conflict("The transform changed meanwhile; try again") from exc
        await self.history.deleted(record.id, expires)
        return record.id

    async def restore(
        self, principal: Principal, revision: RevisionRecord, latest: RevisionRecord
    ) -> TransformRecord:
        """The transform as `revision` had it, saved as its next revision; a deleted one
        comes back with its id. Its owner only; BAD_USER_INPUT when an input is gone."""
        snapshot = revision.snapshot
        inputs = list(snapshot.get("inputDatasetIds") or [])
        found = await self.datasets.get_many(inputs)
        check_datasets_remain(revision.number, inputs, found, principal.user_id)
        cron, enabled, next_run = self._schedule(
            snapshot.get("scheduleCron"), bool(snapshot.get("scheduleEnabled"))
        )
        fields: dict[str, Any] = {
            "workspace_key": await self._unique_key(
                revision.owner_id, snapshot.get("workspaceKey"), revision.object_id
            ),
            "name": snapshot["name"],
            "input_dataset_ids": tuple(inputs),
            "code": snapshot["code"],
            "params": snapshot.get("params"),
            "schedule_cron": cron,
            "schedule_enabled": enabled,
            "next_run_at": next_run,
            "updated_at": utcnow(),
        }
        current = await self.transforms.get(revision.object_id)
        if current is not None:
            owned(current, principal, "transform")
            return await self._save(
                principal, current, current.with_changes(**fields), restored_from=revision.number
            )
        record = TransformRecord(
            id=revision.object_id,
            owner_id=revision.owner_id,
            created_at=utcnow(),
            **fields,
        )
        steps = await self.history.recreating(
            latest, transform_snapshot(record), principal.user_id, restored_from=revision.number
        )
        try:
            await self.transforms.create(record, also=steps)
        except ConditionFailed as exc:
            raise Conflict("The transform was restored meanwhile") from exc
        return record

    async def execute(self, principal: Principal, transform_id: str) -> TransformRunRecord:
        record = await self.get_owned(principal, transform_id)
        if record.running_execution_id:
            raise Conflict(
                f"A run of this transform is in progress ({record.running_execution_id})",
                field="id",
            )
        run_id = new_id("tex")
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
        record: TransformRecord,
        trigger: TriggerType,
        *,
        user_id: str | None,
        due_at: datetime | None = None,
        job_id: str | None = None,
        run_id: str | None = None,
    ) -> TransformRunRecord:
        run_id = run_id or new_id("tex")
        run = TransformRunRecord(
            transform_id=record.id,
            **queued_run_fields(run_id, record.owner_id, trigger, user_id, due_at, utcnow()),
        )
        await self.transforms.create_run(run, job_id or run_id)
        await self.events.publish(run_to_item(run), [transform_runs_channel(record.id)])
        await self.queue.enqueue(
            TRANSFORM_JOB, job_id or run_id, run_id, turn=FairTurn(record.owner_id)
        )
        return run

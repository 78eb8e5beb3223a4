"""Dataset policies: their owner creates, changes and deletes them (each audited), and asks
what a given reader would see. Only the dataset's owner manages its policies: anyone else,
admins included, is told the dataset or policy does not exist (NOT_FOUND). Admins manage
accounts, not other people's data; they set the attributes policies read."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from tilegraph.audit.recorder import AuditRecorder
from tilegraph.domain.audit import AuditEventType
from tilegraph.domain.clock import to_iso, utcnow
from tilegraph.domain.dashboards import ShareTargetType
from tilegraph.domain.datasets import DatasetRecord
from tilegraph.domain.errors import BadUserInput, Conflict, NotFound
from tilegraph.domain.ids import new_id
from tilegraph.domain.ownership import owned
from tilegraph.domain.policies import (
    FULL_ACCESS,
    NO_ROWS,
    DatasetPolicyRecord,
    EffectiveAccess,
    PolicyRowFilter,
    check_hidden_columns,
    check_row_filters,
    resolve_access,
)
from tilegraph.domain.users import Principal, UserRecord
from tilegraph.services.access import RequestLoaders
from tilegraph.store.datasets import DatasetRepository
from tilegraph.store.dynamo import Stale
from tilegraph.store.groups import GroupRepository
from tilegraph.store.policies import PolicyRepository, TargetTaken
from tilegraph.store.users import UserRepository


def policy_snapshot(record: DatasetPolicyRecord) -> dict[str, Any]:
    """A policy as the audit log keeps it (the API's field names)."""
    return {
        "targetType": record.target_type.value,
        "targetId": record.target_id,
        "rowFilters": [
            {"column": f.column, "values": list(f.values)}
            if f.values is not None
            else {"column": f.column, "userAttribute": f.user_attribute}
            for f in record.row_filters
        ],
        "hiddenColumns": list(record.hidden_columns),
        "version": record.version,
    }


NO_ACCESS = EffectiveAccess(
    policies=(), row_condition=(), hidden_columns=(), readable_condition=NO_ROWS
)


def _resolve(
    dataset: DatasetRecord,
    reader_id: str,
    attributes: Mapping[str, str | list[str]],
    policies: Sequence[DatasetPolicyRecord],
    group_ids: Sequence[str],
) -> EffectiveAccess:
    return resolve_access(
        owner_id=dataset.owner_id,
        default_access=dataset.default_access,
        policies=policies,
        reader_id=reader_id,
        reader_group_ids=group_ids,
        reader_attributes=attributes,
    )


@dataclass(frozen=True)
class ReaderAccess:
    """What `reader` sees of `dataset`, and why."""

    dataset: DatasetRecord
    reader: UserRecord
    access: EffectiveAccess


async def _nothing() -> None:
    return None


async def _given(group_ids: Sequence[str]) -> Sequence[str]:
    return group_ids


class PolicyService:
    def __init__(
        self,
        policies: PolicyRepository,
        datasets: DatasetRepository,
        users: UserRepository,
        groups: GroupRepository,
        audit: AuditRecorder,
    ) -> None:
        self.policies = policies
        self.datasets = datasets
        self.users = users
        self.groups = groups
        self.audit = audit

    async def _owned_dataset(self, principal: Principal, dataset_id: str) -> DatasetRecord:
        return owned(await self.datasets.get(dataset_id), principal, "dataset", field="datasetId")

    async def _owned_policy(
        self, principal: Principal, policy_id: str
    ) -> tuple[DatasetPolicyRecord, DatasetRecord]:
        """The policy and its dataset, when the caller owns the dataset; NOT_FOUND else."""
        record = await self.policies.get(policy_id)
        dataset = await self.datasets.get(record.dataset_id) if record else None
        if record is None or dataset is None or dataset.owner_id != principal.user_id:
            raise NotFound("No such dataset policy", field="id")
        return record, dataset

    async def _check_target(
        self, dataset: DatasetRecord, target_type: ShareTargetType, target_id: str
    ) -> None:
        if target_type is ShareTargetType.USER:
            if await self.users.get(target_id) is None:
                raise BadUserInput("No such user", field="targetId")
            if target_id == dataset.owner_id:
                raise BadUserInput(
                    "The owner always sees the whole dataset; a policy cannot limit them",
                    field="targetId",
                )
        elif await self.groups.get(target_id) is None:
            raise BadUserInput("No such group", field="targetId")

    async def create(
        self,
        principal: Principal,
        *,
        dataset_id: str,
        target_type: ShareTargetType,
        target_id: str,
        row_filters: list[PolicyRowFilter],
        hidden_columns: list[str],
        request_id: str | None,
    ) -> DatasetPolicyRecord:
        dataset = await self._owned_dataset(principal, dataset_id)
        columns = {c.name for c in dataset.columns}
        filters = check_row_filters(row_filters, columns)
        hidden = check_hidden_columns(hidden_columns, columns)
        await self._check_target(dataset, target_type, target_id)
        now = utcnow()
        record = DatasetPolicyRecord(
            id=new_id("pol"),
            dataset_id=dataset.id,
            target_type=target_type,
            target_id=target_id,
            row_filters=filters,
            hidden_columns=hidden,
            created_at=now,
            updated_at=now,
        )
        try:
            await self.policies.create(record)
        except TargetTaken as exc:
            raise Conflict(
                "The dataset has a policy for this target already; update that one instead",
                field="targetId",
            ) from exc
        await self._audit(
            AuditEventType.DATASET_POLICY_CREATED,
            principal,
            record,
            {"after": policy_snapshot(record)},
            request_id,
        )
        return record

    async def update(
        self,
        principal: Principal,
        policy_id: str,
        *,
        row_filters: list[PolicyRowFilter] | None,
        hidden_columns: list[str] | None,
        expected_version: int | None,
        request_id: str | None,
    ) -> DatasetPolicyRecord:
        record, dataset = await self._owned_policy(principal, policy_id)
        if expected_version is not None and expected_version != record.version:
            raise Conflict(
                f"The policy is at version {record.version}, not {expected_version}; reload it",
                field="expectedVersion",
            )
        columns = {c.name for c in dataset.columns}
        changed = record
        if row_filters is not None:
            changed = replace(changed, row_filters=check_row_filters(row_filters, columns))
        if hidden_columns is not None:
            changed = replace(changed, hidden_columns=check_hidden_columns(hidden_columns, columns))
        if changed == record:
            return record
        try:
            updated = await self.policies.update(
                record,
                {
                    "row_filters": [f.to_item() for f in changed.row_filters],
                    "hidden_columns": list(changed.hidden_columns),
                    "updated_at": to_iso(utcnow()),
                },
            )
        except Stale as exc:
            raise Conflict("The policy changed meanwhile; reload it and try again") from exc
        await self._audit(
            AuditEventType.DATASET_POLICY_UPDATED,
            principal,
            updated,
            {"before": policy_snapshot(record), "after": policy_snapshot(updated)},
            request_id,
        )
        return updated

    async def delete(self, principal: Principal, policy_id: str, request_id: str | None) -> str:
        record, _ = await self._owned_policy(principal, policy_id)
        if not await self.policies.delete(record):
            raise NotFound("No such dataset policy", field="id")
        await self._audit(
            AuditEventType.DATASET_POLICY_DELETED,
            principal,
            record,
            {"before": policy_snapshot(record)},
            request_id,
        )
        return record.id

    async def _audit(
        self,
        event: AuditEventType,
        principal: Principal,
        record: DatasetPolicyRecord,
        details: dict[str, Any],
        request_id: str | None,
    ) -> None:
        await self.audit.record(
            event,
            user_id=principal.user_id,
            target_type="dataset_policy",
            target_id=record.id,
            details={"datasetId": record.dataset_id, **details},
            request_id=request_id,
        )

    # ------------------------------------------------------------------ reading

    async def access_of(self, dataset: DatasetRecord, reader: UserRecord) -> EffectiveAccess:
        """What `reader` sees of `dataset`: the resolution rule over their groups and
        attributes as stored now."""
        policies = (await self.policies.current_of([dataset]))[dataset.id]
        group_ids = await self.groups.group_ids_of(reader.id) if policies else []
        return _resolve(dataset, reader.id, reader.attributes, policies, group_ids)

    async def access_to(
        self, datasets: Sequence[DatasetRecord], reader_id: str, loaders: RequestLoaders
    ) -> dict[str, EffectiveAccess]:
        """What the reader sees of each dataset, by dataset id, for reads that serve a
        reader (chat, filter options), through the request's loaders so a page asking for
        several costs each lookup once. Their own datasets cost none; a reader who no
        longer exists sees no rows."""
        others = [d for d in datasets if d.owner_id != reader_id]
        found: dict[str, EffectiveAccess] = {
            d.id: FULL_ACCESS for d in datasets if d.owner_id == reader_id
        }
        if not others:
            return found
        reader, current = await asyncio.gather(
            loaders.users.load(reader_id), self.policies.current_of(others)
        )
        policy_lists = [current[d.id] for d in others]
        if reader is None:
            return found | {d.id: NO_ACCESS for d in others}
        group_ids = await loaders.groups_of_user.load(reader_id) if any(policy_lists) else []
        for dataset, policies in zip(others, policy_lists, strict=True):
            found[dataset.id] = _resolve(dataset, reader.id, reader.attributes, policies, group_ids)
        return found

    async def reader_access(
        self,
        principal: Principal,
        datasets: Sequence[DatasetRecord],
        *,
        group_ids: Sequence[str] | None = None,
    ) -> dict[str, EffectiveAccess]:
        """What the caller sees of each of `datasets` they do not own (owners see all of
        theirs, so those are left out), resolved from policies, groups and attributes as
        stored now. `group_ids`: what the request already read. The account is read only
        when a policy reads attributes; a caller whose account cannot be read has none
        (fail closed)."""
        foreign = list({d.id: d for d in datasets if d.owner_id != principal.user_id}.values())
        if not foreign:
            return {}
        current = await self.policies.current_of(foreign)
        found = [current[d.id] for d in foreign]
        attributes: dict[str, str | list[str]] = {}
        if any(found):
            reads_attributes = any(
                f.user_attribute is not None for ps in found for p in ps for f in p.row_filters
            )
            reader, groups = await asyncio.gather(
                self.users.get(principal.user_id) if reads_attributes else _nothing(),
                self.groups.group_ids_of(principal.user_id)
                if group_ids is None
                else _given(group_ids),
            )
            group_ids = groups
            attributes = reader.attributes if reader is not None else {}
        return {
            dataset.id: _resolve(dataset, principal.user_id, attributes, policies, group_ids or ())
            for dataset, policies in zip(foreign, found, strict=True)
        }

    async def explain(
        self, principal: Principal, dataset: DatasetRecord, user_id: str
    ) -> ReaderAccess:
        """For the dataset's owner: what this user would see of it."""
        dataset = owned(dataset, principal, "dataset")
        reader = await self.users.get(user_id)
        if reader is None:
            raise NotFound("No such user", field="userId")
        return ReaderAccess(dataset, reader, await self.access_of(dataset, reader))

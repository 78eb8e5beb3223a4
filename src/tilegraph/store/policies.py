"""Dataset policies: one item per (dataset, target), read together by dataset (a strongly
consistent Query, so a new policy holds from the next read) and found by id through an
index. Every write bumps the dataset's `policy_version` in the same transaction, so the
dataset record alone says whether policies read earlier are still current."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from tilegraph.domain.clock import from_iso, to_iso
from tilegraph.domain.dashboards import ShareTargetType
from tilegraph.domain.datasets import DatasetRecord
from tilegraph.domain.policies import DatasetPolicyRecord, PolicyRowFilter
from tilegraph.store.datasets import TABLE as DATASETS
from tilegraph.store.dynamo import ConditionFailed, Dynamo, KeyCondition, Stale

TABLE = "dataset_policies"


class TargetTaken(Exception):
    """The dataset has a policy for this user or group already."""


def _target(target_type: ShareTargetType, target_id: str) -> str:
    return f"{target_type.value}#{target_id}"


def policy_to_item(record: DatasetPolicyRecord) -> dict[str, Any]:
    return {
        "dataset_id": record.dataset_id,
        "target": _target(record.target_type, record.target_id),
        "id": record.id,
        "target_type": record.target_type.value,
        "target_id": record.target_id,
        "row_filters": [f.to_item() for f in record.row_filters],
        "hidden_columns": list(record.hidden_columns),
        "version": record.version,
        "created_at": to_iso(record.created_at),
        "updated_at": to_iso(record.updated_at),
    }


def policy_from_item(item: dict[str, Any]) -> DatasetPolicyRecord:
    return DatasetPolicyRecord(
        id=item["id"],
        dataset_id=item["dataset_id"],
        target_type=ShareTargetType(item["target_type"]),
        target_id=item["target_id"],
        row_filters=tuple(PolicyRowFilter.from_item(f) for f in item.get("row_filters", [])),
        hidden_columns=tuple(item.get("hidden_columns", [])),
        version=int(item.get("version", 1)),
        created_at=from_iso(item["created_at"]),
        updated_at=from_iso(item["updated_at"]),
    )


def _key(record: DatasetPolicyRecord) -> dict[str, str]:
    return {
        "dataset_id": record.dataset_id,
        "target": _target(record.target_type, record.target_id),
    }


def _bump(dataset_id: str) -> dict[str, Any]:
    """The transaction's step that counts a change to the dataset's policies."""
    return {
        "update": DATASETS,
        "key": {"id": dataset_id},
        "expression": "ADD #pv :one",
        "condition": "attribute_exists(#id)",
        "names": {"#pv": "policy_version", "#id": "id"},
        "values": {":one": 1},
    }


CURRENT_CACHE_SIZE = 4096


class PolicyRepository:
    def __init__(self, db: Dynamo) -> None:
        self.db = db
        # (dataset id, policy_version) -> its policies: a version's policies never change.
        self._current: OrderedDict[tuple[str, int], list[DatasetPolicyRecord]] = OrderedDict()

    async def current_of(
        self, datasets: Sequence[DatasetRecord]
    ) -> dict[str, list[DatasetPolicyRecord]]:
        """The policies of each dataset as of the record given (read as of now), by dataset
        id. A dataset that never had one costs no read, nor does one whose policies this
        process read at the same policy_version."""
        found: dict[str, list[DatasetPolicyRecord]] = {}
        missing: list[DatasetRecord] = []
        for dataset in {d.id: d for d in datasets}.values():
            key = (dataset.id, dataset.policy_version or 0)
            if dataset.policy_version == 0:
                found[dataset.id] = []
            elif dataset.policy_version is not None and key in self._current:
                self._current.move_to_end(key)
                found[dataset.id] = list(self._current[key])
            else:
                missing.append(dataset)
        read = await asyncio.gather(*(self.of_dataset(d.id) for d in missing))
        for dataset, policies in zip(missing, read, strict=True):
            found[dataset.id] = list(policies)
            if dataset.policy_version is not None:
                self._current[(dataset.id, dataset.policy_version)] = policies
                if len(self._current) > CURRENT_CACHE_SIZE:
                    self._current.popitem(last=False)
        return found

    async def create(self, record: DatasetPolicyRecord) -> None:
        """TargetTaken when the dataset has a policy for the same target (or is gone)."""
        try:
            await self.db.transact_write(
                [
                    {
                        "put": TABLE,
                        "item": policy_to_item(record),
                        "condition": "attribute_not_exists(#t)",
                        "names": {"#t": "target"},
                    },
                    _bump(record.dataset_id),
                ]
            )
        except ConditionFailed as exc:
            raise TargetTaken(record.target_id) from exc

    async def of_dataset(self, dataset_id: str) -> list[DatasetPolicyRecord]:
        """Every policy of the dataset, ordered by target."""
        items = await self.db.query_all(
            TABLE, KeyCondition("dataset_id", dataset_id), consistent=True
        )
        return [policy_from_item(i) for i in items]

    async def get(self, policy_id: str) -> DatasetPolicyRecord | None:
        if not policy_id.startswith("pol_"):
            return None
        items = await self.db.query_all(TABLE, KeyCondition("id", policy_id), index="by_id")
        return policy_from_item(items[0]) if items else None

    async def get_many(self, policy_ids: list[str]) -> dict[str, DatasetPolicyRecord]:
        found = await asyncio.gather(*(self.get(i) for i in dict.fromkeys(policy_ids)))
        return {record.id: record for record in found if record is not None}

    async def update(
        self, record: DatasetPolicyRecord, changes: dict[str, Any]
    ) -> DatasetPolicyRecord:
        """Conditional on the version read; Stale when someone else changed it first."""
        names = {f"#c{i}": name for i, name in enumerate(changes)}
        values: dict[str, Any] = {f":c{i}": value for i, value in enumerate(changes.values())}
        clauses = [f"#c{i} = :c{i}" for i in range(len(changes))]
        try:
            await self.db.transact_write(
                [
                    {
                        "update": TABLE,
                        "key": _key(record),
                        "expression": "SET " + ", ".join([*clauses, "#ver = :next"]),
                        "condition": "#ver = :expected",
                        "names": {**names, "#ver": "version"},
                        "values": {
                            **values,
                            ":expected": record.version,
                            ":next": record.version + 1,
                        },
                    },
                    _bump(record.dataset_id),
                ]
            )
        except ConditionFailed as exc:
            raise Stale(record.id) from exc
        updated = {**policy_to_item(record), **changes, "version": record.version + 1}
        return policy_from_item(updated)

    async def delete(self, record: DatasetPolicyRecord) -> bool:
        """False when it was gone already."""
        try:
            await self.db.transact_write(
                [
                    {
                        "delete": TABLE,
                        "key": _key(record),
                        "condition": "attribute_exists(#t)",
                        "names": {"#t": "target"},
                    },
                    _bump(record.dataset_id),
                ]
            )
        except ConditionFailed:
            return False
        return True

    async def delete_for_dataset(self, dataset_id: str) -> None:
        records = await self.of_dataset(dataset_id)
        await self.db.batch_delete(TABLE, [_key(r) for r in records])

    async def delete_for_target(self, target_id: str) -> None:
        """A deleted group's policies go with it, on every dataset (each dataset's count of
        policy changes moves on too)."""
        items = await self.db.query_all(
            TABLE, KeyCondition("target_id", target_id), index="by_target"
        )
        records = [policy_from_item(i) for i in items]
        await asyncio.gather(*(self.delete(r) for r in records))

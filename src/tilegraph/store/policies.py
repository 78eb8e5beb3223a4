"""Dataset policies: one item per (dataset, target), read together by dataset (a strongly
consistent Query, so a new policy holds from the next read) and found by id through an
index."""

from __future__ import annotations

import asyncio
from typing import Any

from tilegraph.domain.clock import from_iso, to_iso
from tilegraph.domain.dashboards import ShareTargetType
from tilegraph.domain.policies import DatasetPolicyRecord, PolicyRowFilter
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


class PolicyRepository:
    def __init__(self, db: Dynamo) -> None:
        self.db = db

    async def create(self, record: DatasetPolicyRecord) -> None:
        """TargetTaken when the dataset has a policy for the same target."""
        try:
            await self.db.put(
                TABLE,
                policy_to_item(record),
                condition="attribute_not_exists(#t)",
                names={"#t": "target"},
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
        try:
            item = await self.db.update(
                TABLE, _key(record), set_values=changes, expected_version=record.version
            )
        except ConditionFailed as exc:
            raise Stale(record.id) from exc
        return policy_from_item(item)

    async def delete(self, record: DatasetPolicyRecord) -> bool:
        """False when it was gone already."""
        return await self.db.delete(TABLE, _key(record)) is not None

    async def delete_for_dataset(self, dataset_id: str) -> None:
        records = await self.of_dataset(dataset_id)
        await self.db.batch_delete(TABLE, [_key(r) for r in records])

    async def delete_for_target(self, target_id: str) -> None:
        """A deleted group's policies go with it, on every dataset."""
        items = await self.db.query_all(
            TABLE, KeyCondition("target_id", target_id), index="by_target"
        )
        await self.db.batch_delete(TABLE, [_key(policy_from_item(i)) for i in items])

"""Datasets: metadata records with a published data version flipped by conditional write."""

from __future__ import annotations

from typing import Any

from tilegraph.domain.clock import from_iso, to_iso
from tilegraph.domain.datasets import (
    ColumnSpec,
    DatasetAccessDefault,
    DatasetRecord,
    DatasetSourceType,
)
from tilegraph.store.dynamo import ConditionFailed, Dynamo, KeyCondition, Stale
from tilegraph.store.pagination import Page

TABLE = "datasets"


def dataset_to_item(record: DatasetRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "owner_id": record.owner_id,
        "name": record.name,
        "description": record.description,
        "source_type": record.source_type.value,
        "source_config": record.source_config,
        "version": record.version,
        "next_version": record.version,
        "row_count": record.row_count,
        "columns": [c.to_item() for c in record.columns],
        "created_at": to_iso(record.created_at),
        "updated_at": to_iso(record.updated_at),
        "last_import_at": to_iso(record.last_import_at) if record.last_import_at else None,
        "last_import_by": record.last_import_by,
        "latest_import_id": record.latest_import_id,
        "published_versions": list(record.published_versions),
        "revision": record.revision,
        "default_access": record.default_access.value,
        "policy_version": record.policy_version,
    }


def dataset_from_item(item: dict[str, Any]) -> DatasetRecord:
    last_import_at = item.get("last_import_at")
    return DatasetRecord(
        id=item["id"],
        owner_id=item["owner_id"],
        name=item["name"],
        description=item.get("description"),
        source_type=DatasetSourceType(item["source_type"]),
        source_config=item.get("source_config"),
        version=int(item.get("version", 0)),
        row_count=int(item.get("row_count", 0)),
        columns=tuple(ColumnSpec.from_item(c) for c in item.get("columns", [])),
        created_at=from_iso(item["created_at"]),
        updated_at=from_iso(item["updated_at"]),
        last_import_at=from_iso(last_import_at) if last_import_at else None,
        last_import_by=item.get("last_import_by"),
        latest_import_id=item.get("latest_import_id"),
        published_versions=tuple(int(v) for v in item.get("published_versions", [])),
        revision=int(item.get("revision", 1)),
        # Datasets stored before policies existed show every row to every reader.
        default_access=DatasetAccessDefault(item.get("default_access", "FULL")),
        policy_version=_int_or_none(item.get("policy_version")),
    )


def _int_or_none(value: Any) -> int | None:
    return int(value) if value is not None else None


class DatasetRepository:
    def __init__(self, db: Dynamo) -> None:
        self.db = db

    async def create(self, record: DatasetRecord) -> None:
        await self.db.put_new(TABLE, dataset_to_item(record))

    async def get(self, dataset_id: str) -> DatasetRecord | None:
        if not dataset_id.startswith("ds_"):
            return None
        item = await self.db.get(TABLE, {"id": dataset_id})
        return dataset_from_item(item) if item else None

    async def get_many(self, dataset_ids: list[str]) -> dict[str, DatasetRecord]:
        ids = [i for i in dataset_ids if i.startswith("ds_")]
        items = await self.db.batch_get(TABLE, [{"id": i} for i in ids])
        return {item["id"]: dataset_from_item(item) for item in items}

    async def list_page(self, owner_id: str, first: int, after: str | None) -> Page[DatasetRecord]:
        page = await self.db.query_page(
            TABLE,
            KeyCondition("owner_id", owner_id),
            index="by_owner",
            first=first,
            after=after,
            forward=False,
        )
        return page.map(dataset_from_item)

    async def update_metadata(
        self, record: DatasetRecord, changes: dict[str, Any]
    ) -> DatasetRecord:
        """Name, description or column descriptions, guarded by the metadata revision."""
        try:
            item = await self.db.update(
                TABLE,
                {"id": record.id},
                set_values={**changes, "revision": record.revision + 1},
                condition="#rev = :rev",
                names={"#rev": "revision"},
                values={":rev": record.revision},
                bump_version=False,
            )
        except ConditionFailed as exc:
            raise Stale(record.id) from exc
        return dataset_from_item(item)

    async def set_latest_import(self, dataset_id: str, import_id: str) -> DatasetRecord:
        """The dataset as stored after the change."""
        item = await self.db.update(
            TABLE,
            {"id": dataset_id},
            set_values={"latest_import_id": import_id},
            bump_version=False,
        )
        return dataset_from_item(item)

    async def reserve_version(self, dataset_id: str) -> int:
        """A fresh version number for an import's files, never handed out twice."""
        response = await self.db.client.update_item(
            TableName=self.db.name(TABLE),
            Key={"id": {"S": dataset_id}},
            UpdateExpression="ADD #nv :one",
            ConditionExpression="attribute_exists(id)",
            ExpressionAttributeNames={"#nv": "next_version"},
            ExpressionAttributeValues={":one": {"N": "1"}},
            ReturnValues="UPDATED_NEW",
        )
        return int(response["Attributes"]["next_version"]["N"])

    async def publish_version(
        self,
        dataset_id: str,
        version: int,
        *,
        columns: list[ColumnSpec],
        row_count: int,
        imported_at: str,
        imported_by: str | None,
        extra: dict[str, Any] | None = None,
    ) -> DatasetRecord | None:
        """Flip the published version, only forward: a slower, older import never
        replaces a newer one. None when the dataset is gone or a newer version won."""
        try:
            item = await self.db.update(
                TABLE,
                {"id": dataset_id},
                set_values={
                    "version": version,
                    "columns": [c.to_item() for c in columns],
                    "row_count": row_count,
                    "last_import_at": imported_at,
                    "last_import_by": imported_by,
                    "updated_at": imported_at,
                    **(extra or {}),
                },
                condition="#v < :new",
                names={"#v": "version"},
                values={":new": version},
                bump_version=False,
                # In the flip's own write: a version in this list is live, whatever happens
                # to the process that published it right after.
                append={"published_versions": [version]},
            )
        except ConditionFailed:
            return None
        return dataset_from_item(item)

    async def forget_versions(self, dataset_id: str, versions: tuple[int, ...]) -> None:
        record = await self.get(dataset_id)
        if record is None:
            return
        kept = [v for v in record.published_versions if v not in versions]
        await self.db.update(
            TABLE, {"id": dataset_id}, set_values={"published_versions": kept}, bump_version=False
        )

    async def delete(self, dataset_id: str) -> None:
        await self.db.delete(TABLE, {"id": dataset_id})

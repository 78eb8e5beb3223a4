"""Every DynamoDB table and index Tilegraph uses, and their idempotent creation."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import structlog
from botocore.exceptions import ClientError

from tilegraph.settings import Settings

log = structlog.get_logger("tilegraph.store")


@dataclass(frozen=True)
class IndexSpec:
    name: str
    hash_key: str
    range_key: str | None = None


@dataclass(frozen=True)
class TableSpec:
    name: str
    hash_key: str
    range_key: str | None = None
    indexes: tuple[IndexSpec, ...] = field(default_factory=tuple)
    # A number attribute (epoch seconds) after which DynamoDB may delete the item.
    ttl_attribute: str | None = None

    def key_attributes(self, index: str | None = None) -> tuple[str, ...]:
        """The attributes that make up an item's position in the table or an index."""
        keys = [self.hash_key] + ([self.range_key] if self.range_key else [])
        if index is not None:
            spec = self.index(index)
            keys += [spec.hash_key] + ([spec.range_key] if spec.range_key else [])
        return tuple(dict.fromkeys(keys))

    def index(self, name: str) -> IndexSpec:
        for spec in self.indexes:
            if spec.name == name:
                return spec
        raise KeyError(f"{self.name} has no index {name}")


def _owner_index() -> IndexSpec:
    return IndexSpec("by_owner", "owner_id", "created_at")


def _active_index() -> IndexSpec:
    """Sparse: `active_shard` exists only while an execution is QUEUED or RUNNING, so the
    sweeper finds unfinished work with a Query, never a Scan."""
    return IndexSpec("by_active", "active_shard", "queued_at")


TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        # User items plus `email#…` claim items that make emails unique.
        TableSpec("users", "id", indexes=(IndexSpec("by_email", "kind", "email_lower"),)),
        # Group items plus `name#…` claim items that make names unique.
        TableSpec("groups", "id", indexes=(IndexSpec("by_name", "kind", "name_lower"),)),
        TableSpec(
            "group_members",
            "group_id",
            "user_id",
            indexes=(IndexSpec("by_user", "user_id", "group_id"),),
        ),
        TableSpec("datasets", "id", indexes=(_owner_index(),)),
        TableSpec(
            "dataset_imports",
            "id",
            indexes=(IndexSpec("by_dataset", "dataset_id", "queued_at"), _active_index()),
        ),
        TableSpec("cards", "id", indexes=(_owner_index(),)),
        TableSpec(
            "card_executions",
            "id",
            indexes=(IndexSpec("by_card", "card_id", "queued_at"), _active_index()),
        ),
        TableSpec("dashboards", "id", indexes=(_owner_index(),)),
        # Which dashboards show a card (store.placements): written with the dashboard.
        TableSpec("card_placements", "card_id", "dashboard_id"),
        TableSpec(
            "dashboard_shares",
            "id",
            indexes=(
                IndexSpec("by_dashboard", "dashboard_id", "created_at"),
                IndexSpec("by_target", "target_id", "created_at"),
            ),
        ),
        # One item per (dataset, target): the key holds the target, so a second policy for
        # the same user or group fails its conditional put.
        TableSpec(
            "dataset_policies",
            "dataset_id",
            "target",
            indexes=(IndexSpec("by_id", "id"), IndexSpec("by_target", "target_id")),
        ),
        TableSpec(
            "filter_views", "id", indexes=(IndexSpec("by_dashboard", "dashboard_id", "created_at"),)
        ),
        # `schedule_shard` is set only while a schedule is enabled: a sparse index of due work.
        TableSpec(
            "transforms",
            "id",
            indexes=(_owner_index(), IndexSpec("by_schedule", "schedule_shard", "next_run_at")),
        ),
        TableSpec(
            "transform_executions",
            "transform_id",
            "started",
            indexes=(IndexSpec("by_id", "id"), _active_index()),
        ),
        # Deliveries: by owner and dashboard, with the same sparse schedule index transforms
        # have; their runs by delivery, with the sweeper's index of unfinished ones.
        TableSpec(
            "deliveries",
            "id",
            indexes=(
                _owner_index(),
                IndexSpec("by_dashboard", "dashboard_id", "created_at"),
                IndexSpec("by_schedule", "schedule_shard", "next_run_at"),
            ),
        ),
        TableSpec(
            "delivery_executions",
            "id",
            indexes=(IndexSpec("by_delivery", "delivery_id", "started"), _active_index()),
        ),
        # Every saved state of a card, dashboard or transform, by object and number; the
        # last revision of a deleted object is in the sparse by_deleted_owner index.
        TableSpec(
            "revisions",
            "object_id",
            "seq",
            indexes=(
                IndexSpec("by_id", "id"),
                IndexSpec("by_deleted_owner", "deleted_owner", "deleted_at"),
            ),
            ttl_attribute="expires_at",
        ),
        # Revoked token ids, until their token would have expired anyway.
        TableSpec("revoked_tokens", "jti", ttl_attribute="expires_at"),
        TableSpec(
            "audit_logs",
            "id",
            indexes=(
                IndexSpec("by_user", "user_id", "ts_id"),
                IndexSpec("by_target", "target_id", "ts_id"),
                IndexSpec("by_time", "feed", "ts_id"),
            ),
        ),
    )
}


def _create_table_request(spec: TableSpec, table_name: str) -> dict[str, Any]:
    attributes: dict[str, str] = {}
    key_schema = [{"AttributeName": spec.hash_key, "KeyType": "HASH"}]
    attributes[spec.hash_key] = "S"
    if spec.range_key:
        key_schema.append({"AttributeName": spec.range_key, "KeyType": "RANGE"})
        attributes[spec.range_key] = "S"
    indexes = []
    for index in spec.indexes:
        index_keys = [{"AttributeName": index.hash_key, "KeyType": "HASH"}]
        attributes[index.hash_key] = "S"
        if index.range_key:
            index_keys.append({"AttributeName": index.range_key, "KeyType": "RANGE"})
            attributes[index.range_key] = "S"
        indexes.append(
            {
                "IndexName": index.name,
                "KeySchema": index_keys,
                "Projection": {"ProjectionType": "ALL"},
            }
        )
    request: dict[str, Any] = {
        "TableName": table_name,
        "KeySchema": key_schema,
        "AttributeDefinitions": [
            {"AttributeName": name, "AttributeType": kind} for name, kind in attributes.items()
        ],
        "BillingMode": "PAY_PER_REQUEST",
    }
    if indexes:
        request["GlobalSecondaryIndexes"] = indexes
    return request


async def ensure_tables(dynamodb: Any, settings: Settings) -> list[str]:
    """Create every missing table; return the names created. Safe to run concurrently."""
    existing: set[str] = set()
    paginator_args: dict[str, Any] = {}
    while True:
        page = await dynamodb.list_tables(**paginator_args)
        existing.update(page.get("TableNames", []))
        if "LastEvaluatedTableName" not in page:
            break
        paginator_args = {"ExclusiveStartTableName": page["LastEvaluatedTableName"]}
    created = []
    for spec in TABLES.values():
        name = settings.table_name(spec.name)
        if name in existing:
            await _add_missing_indexes(dynamodb, spec, name)
            continue
        try:
            await dynamodb.create_table(**_create_table_request(spec, name))
            created.append(name)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceInUseException":
                raise
    for name in created:
        for _ in range(120):
            description = await dynamodb.describe_table(TableName=name)
            if description["Table"]["TableStatus"] == "ACTIVE":
                break
            await asyncio.sleep(0.5)
    for spec in TABLES.values():
        if spec.ttl_attribute:
            await _ensure_ttl(dynamodb, settings.table_name(spec.name), spec.ttl_attribute)
    return created


async def _ensure_ttl(dynamodb: Any, table_name: str, attribute: str) -> None:
    """Turn on DynamoDB TTL where the service supports it; without it the items only stay
    longer (readers compare the expiry themselves)."""
    try:
        described = await dynamodb.describe_time_to_live(TableName=table_name)
        status = described.get("TimeToLiveDescription", {}).get("TimeToLiveStatus")
        if status in {"ENABLED", "ENABLING"}:
            return
        await dynamodb.update_time_to_live(
            TableName=table_name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": attribute},
        )
    except ClientError as exc:
        log.warning("ttl_not_enabled", table=table_name, error=exc.response["Error"]["Code"])


async def _add_missing_indexes(dynamodb: Any, spec: TableSpec, table_name: str) -> None:
    """Tables made by an older release get the indexes added since."""
    description = await dynamodb.describe_table(TableName=table_name)
    present = {i["IndexName"] for i in description["Table"].get("GlobalSecondaryIndexes", [])}
    request = _create_table_request(spec, table_name)
    for index in request.get("GlobalSecondaryIndexes", []):
        if index["IndexName"] in present:
            continue
        names = {k["AttributeName"] for k in index["KeySchema"]}
        await dynamodb.update_table(
            TableName=table_name,
            AttributeDefinitions=[
                a for a in request["AttributeDefinitions"] if a["AttributeName"] in names
            ],
            GlobalSecondaryIndexUpdates=[{"Create": index}],
        )


async def ensure_bucket(s3: Any, settings: Settings, bucket: str | None = None) -> bool:
    """Create the bucket (ours unless named) when missing; True when it was created."""
    bucket = bucket or settings.bucket
    try:
        await s3.head_bucket(Bucket=bucket)
        return False
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in {"404", "NoSuchBucket", "NotFound"}:
            raise
    request: dict[str, Any] = {"Bucket": bucket}
    if settings.aws_region != "us-east-1":
        request["CreateBucketConfiguration"] = {"LocationConstraint": settings.aws_region}
    try:
        await s3.create_bucket(**request)
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
            raise
        return False
    return True

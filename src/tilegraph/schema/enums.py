"""GraphQL enums, declared once in domain/ and registered here under the contract's names."""

from __future__ import annotations

import strawberry

from tilegraph.domain.audit import AuditEventType
from tilegraph.domain.cards import CardType
from tilegraph.domain.dashboards import ShareTargetType
from tilegraph.domain.datasets import ColumnType, DatasetSourceType
from tilegraph.domain.errors import ErrorCode
from tilegraph.domain.executions import ExecutionErrorCode, ExecutionStatus
from tilegraph.domain.filters import FilterType
from tilegraph.domain.permissions import PermissionLevel
from tilegraph.domain.schema_diff import SchemaChangeType
from tilegraph.domain.transforms import TriggerType
from tilegraph.domain.users import Role

strawberry.enum(Role, name="Role")
strawberry.enum(PermissionLevel, name="PermissionLevel", description="VIEWER < EDITOR < OWNER.")
strawberry.enum(AuditEventType, name="AuditEventType")
strawberry.enum(ColumnType, name="ColumnType")
strawberry.enum(DatasetSourceType, name="DatasetSourceType")
strawberry.enum(ExecutionStatus, name="ExecutionStatus")
strawberry.enum(ExecutionErrorCode, name="ExecutionErrorCode")
strawberry.enum(SchemaChangeType, name="SchemaChangeType")
strawberry.enum(CardType, name="CardType")
strawberry.enum(ShareTargetType, name="ShareTargetType")
strawberry.enum(FilterType, name="FilterType")
strawberry.enum(TriggerType, name="TriggerType")
strawberry.enum(
    ErrorCode,
    name="ErrorCode",
    description="Every `extensions.code` a GraphQL error may carry.",
)

__all__ = [
    "AuditEventType",
    "CardType",
    "ColumnType",
    "DatasetSourceType",
    "ErrorCode",
    "ExecutionErrorCode",
    "ExecutionStatus",
    "FilterType",
    "PermissionLevel",
    "Role",
    "SchemaChangeType",
    "ShareTargetType",
    "TriggerType",
]

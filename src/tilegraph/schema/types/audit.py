"""AuditLog and its filter."""

from __future__ import annotations

from datetime import datetime

import strawberry

from tilegraph.context import Info
from tilegraph.domain.audit import AuditQuery, AuditRecord
from tilegraph.schema.enums import AuditEventType
from tilegraph.schema.fields import field
from tilegraph.schema.node import Node
from tilegraph.schema.scalars import JSON
from tilegraph.schema.types.users import User, load_user
from tilegraph.schema.values import given


@strawberry.type
class AuditLog(Node):
    timestamp: datetime
    event_type: AuditEventType
    target_type: str
    target_id: str
    details: JSON | None
    request_id: str | None
    user_id: strawberry.Private[str | None]

    @classmethod
    def from_record(cls, record: AuditRecord) -> AuditLog:
        return cls(
            id=strawberry.ID(record.id),
            timestamp=record.timestamp,
            event_type=record.event_type,
            target_type=record.target_type,
            target_id=record.target_id,
            details=JSON(record.details) if record.details is not None else None,
            request_id=record.request_id,
            user_id=record.user_id,
        )

    @field(description="The acting user; null for system actions such as scheduled runs.")
    async def user(self, info: Info) -> User | None:
        return await load_user(info, self.user_id)


@strawberry.input
class AuditLogFilter:
    event_type: AuditEventType | None = strawberry.UNSET
    user_id: strawberry.ID | None = strawberry.UNSET
    target_id: str | None = strawberry.UNSET
    from_: datetime | None = strawberry.field(default=strawberry.UNSET, name="from")
    to: datetime | None = strawberry.UNSET

    def to_query(self) -> AuditQuery:
        return AuditQuery(
            event_type=given(self.event_type),
            user_id=given(self.user_id),
            target_id=given(self.target_id),
            start=given(self.from_),
            end=given(self.to),
        )

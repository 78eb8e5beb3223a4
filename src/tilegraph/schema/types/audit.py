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


@strawberry.type(description="One entry of the audit log: who did what to which object, when.")
class AuditLog(Node):
    timestamp: datetime = strawberry.field(description="When it happened.")
    event_type: AuditEventType = strawberry.field(description="What happened.")
    target_type: str = strawberry.field(
        description='The kind of object it happened to: "user", "email" (a sign-in for an '
        'unknown address), "dataset", "card", "preview", "dashboard" or "transform".'
    )
    target_id: str = strawberry.field(
        description="The id of the object it happened to (the email address when "
        'targetType is "email").'
    )
    details: JSON | None = strawberry.field(
        description="More about the event, by event type (e.g. the client address of a "
        "sign-in, the reason a sign-in failed, the previous permission of a share)."
    )
    request_id: str | None = strawberry.field(
        description="The X-Request-ID of the API request that caused it; null for work done "
        "by a worker."
    )
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


@strawberry.input(description="Narrows the audit log; the entries must match every field given.")
class AuditLogFilter:
    event_type: AuditEventType | None = strawberry.field(
        default=strawberry.UNSET, description="Only entries of this type."
    )
    user_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET, description="Only entries whose acting user is this one."
    )
    target_id: str | None = strawberry.field(
        default=strawberry.UNSET, description="Only entries about this object (AuditLog.targetId)."
    )
    from_: datetime | None = strawberry.field(
        default=strawberry.UNSET,
        name="from",
        description="Only entries at or after this time; not after `to` (BAD_USER_INPUT).",
    )
    to: datetime | None = strawberry.field(
        default=strawberry.UNSET, description="Only entries at or before this time."
    )

    def to_query(self) -> AuditQuery:
        return AuditQuery(
            event_type=given(self.event_type),
            user_id=given(self.user_id),
            target_id=given(self.target_id),
            start=given(self.from_),
            end=given(self.to),
        )

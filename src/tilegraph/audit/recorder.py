"""Records audit events. A failed write is logged and never fails the user's request."""

from __future__ import annotations

from typing import Any

import structlog

from tilegraph.domain.audit import AuditEventType, AuditRecord
from tilegraph.domain.clock import utcnow
from tilegraph.domain.ids import new_id
from tilegraph.store.audit import AuditRepository

log = structlog.get_logger(__name__)


class AuditRecorder:
    def __init__(self, repository: AuditRepository) -> None:
        self.repository = repository

    async def record(
        self,
        event_type: AuditEventType,
        *,
        user_id: str | None,
        target_type: str,
        target_id: str,
        details: dict[str, Any] | None = None,
        request_id: str | None = None,
    ) -> AuditRecord | None:
        record = AuditRecord(
            id=new_id("log"),
            timestamp=utcnow(),
            event_type=event_type,
            user_id=user_id,
            target_type=target_type,
            target_id=target_id,
            details=details,
            request_id=request_id,
        )
        try:
            await self.repository.add(record)
        except Exception:
            log.exception("audit_write_failed", event_type=event_type.value, target_id=target_id)
            return None
        return record

"""Audit events (contract enum AuditEventType) and the stored record."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class AuditEventType(StrEnum):
    USER_LOGIN = "USER_LOGIN"
    USER_LOGOUT = "USER_LOGOUT"
    USER_LOGIN_FAILED = "USER_LOGIN_FAILED"
    USER_UPDATED = "USER_UPDATED"
    DASHBOARD_SHARE_ADDED = "DASHBOARD_SHARE_ADDED"
    DASHBOARD_SHARE_REMOVED = "DASHBOARD_SHARE_REMOVED"
    DASHBOARD_SHARE_UPDATED = "DASHBOARD_SHARE_UPDATED"
    DATASET_CREATED = "DATASET_CREATED"
    DATASET_IMPORTED = "DATASET_IMPORTED"
    DATASET_DELETED = "DATASET_DELETED"
    TRANSFORM_EXECUTED = "TRANSFORM_EXECUTED"
    TRANSFORM_FAILED = "TRANSFORM_FAILED"
    CARD_EXECUTION_FAILED = "CARD_EXECUTION_FAILED"
    CHATBOT_QUERY = "CHATBOT_QUERY"
    DATASET_POLICY_CREATED = "DATASET_POLICY_CREATED"
    DATASET_POLICY_UPDATED = "DATASET_POLICY_UPDATED"
    DATASET_POLICY_DELETED = "DATASET_POLICY_DELETED"
    USER_ATTRIBUTES_CHANGED = "USER_ATTRIBUTES_CHANGED"
    DATASET_DEFAULT_ACCESS_CHANGED = "DATASET_DEFAULT_ACCESS_CHANGED"
    REVISION_RESTORED = "REVISION_RESTORED"
    DELIVERY_SENT = "DELIVERY_SENT"
    DELIVERY_FAILED = "DELIVERY_FAILED"


@dataclass(frozen=True)
class AuditRecord:
    id: str
    timestamp: datetime
    event_type: AuditEventType
    user_id: str | None
    target_type: str
    target_id: str
    details: dict[str, Any] | None
    request_id: str | None


@dataclass(frozen=True)
class AuditQuery:
    """A filter over the audit log; every field optional."""

    event_type: AuditEventType | None = None
    user_id: str | None = None
    target_id: str | None = None
    start: datetime | None = None
    end: datetime | None = None

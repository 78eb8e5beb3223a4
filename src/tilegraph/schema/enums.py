"""GraphQL enums, declared once in domain/ and registered here under the contract's names."""

from __future__ import annotations

import strawberry

from tilegraph.domain.audit import AuditEventType
from tilegraph.domain.permissions import PermissionLevel
from tilegraph.domain.users import Role

strawberry.enum(Role, name="Role")
strawberry.enum(PermissionLevel, name="PermissionLevel", description="VIEWER < EDITOR < OWNER.")
strawberry.enum(AuditEventType, name="AuditEventType")

__all__ = ["AuditEventType", "PermissionLevel", "Role"]

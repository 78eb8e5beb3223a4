"""Reading the audit log (admin only, enforced by @requiresRole)."""

from __future__ import annotations

from typing import Annotated

import strawberry

from tilegraph.context import Info
from tilegraph.domain.audit import AuditQuery
from tilegraph.schema.connections import After, Connection, First, connection_from_page
from tilegraph.schema.types.audit import AuditLog, AuditLogFilter
from tilegraph.schema.values import given, page_size


async def audit_logs(
    info: Info,
    filter: Annotated[
        AuditLogFilter | None,
        strawberry.argument(description="Only entries that match it; every entry when omitted."),
    ] = strawberry.UNSET,
    first: First = 50,
    after: After = strawberry.UNSET,
) -> Connection[AuditLog]:
    given_filter = given(filter)
    query = given_filter.to_query() if given_filter is not None else AuditQuery()
    page = await info.context.services.audit.list_page(query, page_size(first, 50), given(after))
    return connection_from_page(page, AuditLog.from_record)

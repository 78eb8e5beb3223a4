"""Reading the audit log (admins; the API enforces the role)."""

from __future__ import annotations

from tilegraph.domain.audit import AuditQuery, AuditRecord
from tilegraph.domain.errors import BadUserInput
from tilegraph.domain.paging import check_first
from tilegraph.store.audit import AuditRepository
from tilegraph.store.pagination import Page


class AuditService:
    def __init__(self, repository: AuditRepository) -> None:
        self.repository = repository

    async def list_page(
        self, query: AuditQuery, first: int, after: str | None
    ) -> Page[AuditRecord]:
        if query.start and query.end and query.start > query.end:
            raise BadUserInput("`from` must not be after `to`", field="filter.from")
        return await self.repository.list_page(query, check_first(first), after)

"""A card result's table: its first rows and download links. The caller reached the result
through an execution it may read (its own run), the same rule as the result's HTML; the table
is the card's output for that run's reader, stored under the result's cache key."""

from __future__ import annotations

from typing import Any

from tilegraph.domain.card_outputs import (
    MAX_XLSX_ROWS,
    CardOutputError,
    TableFormat,
    check_rows_limit,
    json_cell,
)
from tilegraph.domain.cards import CardResultRecord
from tilegraph.domain.errors import BadUserInput, NotFound
from tilegraph.store.card_results import CardResults

# How long a download link works; following it needs no token.
DOWNLOAD_SECONDS = 15 * 60


class CardTableService:
    def __init__(self, results: CardResults) -> None:
        self.results = results

    async def rows(self, result: CardResultRecord, limit: int) -> list[list[Any]]:
        try:
            check_rows_limit(limit)
        except CardOutputError as exc:
            raise BadUserInput(str(exc), field="limit") from exc
        rows = await self.results.first_rows(result.cache_key, limit)
        if rows is None:
            raise _gone()
        return [[json_cell(value) for value in row] for row in rows]

    async def download_url(self, result: CardResultRecord, table_format: TableFormat) -> str:
        table = result.table
        if table is None:
            raise _gone()
        if table_format is TableFormat.XLSX and table.row_count > MAX_XLSX_ROWS:
            raise BadUserInput(
                f"The table has {table.row_count} rows; an XLSX sheet holds at most "
                f"{MAX_XLSX_ROWS}: download it as CSV or PARQUET",
                field="format",
            )
        url = await self.results.table_download(
            result.cache_key, table_format, "card-table", DOWNLOAD_SECONDS
        )
        if url is None:
            raise _gone()
        return url


def _gone() -> NotFound:
    return NotFound("The card's table is no longer stored; run the card again")

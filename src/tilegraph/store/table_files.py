"""A card's table as files: Parquet (how it is stored), and the CSV and XLSX made from it
for downloads. Blocking: callers run these in a thread."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from tilegraph.domain.card_outputs import spreadsheet_cell

CONTENT_TYPES = {
    "parquet": "application/vnd.apache.parquet",
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
_XLSX_BATCH_ROWS = 10_000
# More than the most rows `CardTable.rows` returns, so its read takes one row group.
ROW_GROUP_ROWS = 10_000


def to_parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd", row_group_size=ROW_GROUP_ROWS)
    return sink.getvalue()


def from_parquet(body: bytes) -> pa.Table:
    return pq.read_table(pa.BufferReader(body))


def first_rows(source: pa.NativeFile, limit: int) -> list[list[Any]]:
    """The first `limit` rows, row-major, as Python values; reads only as many row groups
    as it needs."""
    rows: list[list[Any]] = []
    parquet = pq.ParquetFile(source)
    for batch in parquet.iter_batches(batch_size=limit):
        head = batch.slice(0, limit - len(rows))
        columns = [column.to_pylist() for column in head.columns]
        rows.extend(list(row) for row in zip(*columns, strict=True))
        if len(rows) >= limit:
            break
    return rows


def to_csv(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pa_csv.write_csv(table, sink)
    return sink.getvalue()


def _xlsx_value(value: Any) -> Any:
    value = spreadsheet_cell(value)
    if isinstance(value, str):
        return ILLEGAL_CHARACTERS_RE.sub("", value)  # control characters XML cannot hold
    return value


def to_xlsx(table: pa.Table) -> bytes:
    """One sheet: the header, then every row (the caller checks Excel's row limit)."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet("table")
    sheet.append(list(table.column_names))
    for batch in table.to_batches(max_chunksize=_XLSX_BATCH_ROWS):
        columns = [column.to_pylist() for column in batch.columns]
        for row in zip(*columns, strict=True):
            sheet.append([_xlsx_value(v) for v in row])
    sink = io.BytesIO()
    book.save(sink)
    return sink.getvalue()


CONVERTERS: dict[str, Callable[[pa.Table], bytes]] = {"csv": to_csv, "xlsx": to_xlsx}

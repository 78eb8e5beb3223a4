"""A reader's row condition and hidden columns as a Parquet read: the scan predicate, the
projection, and the reads built on them for what a reader may see (chat summaries, filter
options). Values compare as the strings users see (as CATEGORY filters do), and anything the
dataset cannot answer — a column it lacks — shows no rows: policies fail closed.
Blocking calls: run them in a thread."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads

from tilegraph.domain.policies import EffectiveAccess
from tilegraph.store.parquet import as_text, row_condition_expression, visible_columns

SCAN_BATCH_ROWS = 131_072


def visible_batches(
    dataset: pads.Dataset, access: EffectiveAccess, batch_rows: int = SCAN_BATCH_ROWS
) -> pa.RecordBatchReader:
    """The rows and columns `access` lets its reader see, batch by batch (hidden columns are
    not in the schema at all). Read-ahead is kept small so memory stays near a batch."""
    scanner = pads.Scanner.from_dataset(
        dataset,
        columns=visible_columns(dataset.schema, None, access.hidden_columns),
        filter=row_condition_expression(access.row_condition, dataset.schema),
        batch_size=batch_rows,
        batch_readahead=2,
        fragment_readahead=1,
    )
    return scanner.to_reader()


def visible_values(
    dataset: pads.Dataset,
    column: str,
    access: EffectiveAccess,
    search: str | None,
    limit: int,
) -> list[str]:
    """Distinct non-null values of `column` as strings, sorted, from the rows `access` shows;
    none for a hidden column or one the dataset lacks."""
    if column in access.hidden_columns or column not in dataset.schema.names:
        return []
    table = dataset.to_table(
        columns=[column], filter=row_condition_expression(access.row_condition, dataset.schema)
    )
    return distinct_text(table.column(column), search, limit)


def distinct_text(values: Any, search: str | None, limit: int) -> list[str]:
    """Distinct non-null values as strings, those containing `search` (any case), sorted,
    at most `limit`."""
    text = as_text(pc.unique(values).drop_null())
    if search:
        text = text.filter(pc.match_substring(text, search, ignore_case=True))
    ordered = pc.array_sort_indices(text)
    return list(text.take(ordered).slice(0, limit).to_pylist())


def visible_row_count(dataset: pads.Dataset, access: EffectiveAccess) -> int:
    """How many rows `access` lets its reader see (the scan reads the condition's columns
    only)."""
    if not access.any_rows:
        return 0
    expression = row_condition_expression(access.row_condition, dataset.schema)
    return int(dataset.count_rows(filter=expression))

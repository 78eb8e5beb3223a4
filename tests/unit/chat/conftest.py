"""Session fixtures: the generated sales table and its summary."""

from __future__ import annotations

import pyarrow as pa
import pytest

from tests.unit.chat.data import COLUMN_TYPES, sales_table
from tilegraph.chat.summary import DatasetSummary, summarize_table


@pytest.fixture(scope="session")
def table() -> pa.Table:
    return sales_table()


@pytest.fixture(scope="session")
def summary(table: pa.Table) -> DatasetSummary:
    return summarize_table(
        table, dataset_id="ds_sales", name="sales", version=3, column_types=COLUMN_TYPES
    )

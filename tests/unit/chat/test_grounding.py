from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from tests.unit.chat.data import COLUMN_TYPES, sales_table
from tilegraph.chat.grounding import (
    NO_DATA,
    UNREADABLE,
    DatasetSource,
    MemorySummaryCache,
    SummaryLoader,
)
from tilegraph.chat.prompt import UnavailableDataset
from tilegraph.chat.summary import summary_cache_key


class Opener:
    """Counts how often a dataset's data is opened (i.e. a summary computed)."""

    def __init__(self, path: Path | None) -> None:
        self.path, self.calls, self.lock = path, 0, threading.Lock()

    def __call__(self) -> ds.Dataset:
        with self.lock:
            self.calls += 1
        if self.path is None:
            raise OSError("NoSuchKey: datasets/ds_gone/v2/part-0.parquet")
        return ds.dataset(self.path, format="parquet")


@pytest.fixture(scope="module")
def parquet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ds") / "part-0.parquet"
    pq.write_table(sales_table(), path, row_group_size=300)
    return path


def source(
    opener: Opener, version: int = 3, dataset_id: str = "ds_sales", name: str = "sales"
) -> DatasetSource:
    return DatasetSource(dataset_id, name, version, opener, COLUMN_TYPES)


async def test_summaries_are_computed_once_per_version_and_cached(parquet: Path) -> None:
    cache = MemorySummaryCache()
    loader = SummaryLoader(cache)
    opener = Opener(parquet)
    first = await loader.load([source(opener)])
    assert first.unavailable == [] and first.summaries[0].row_count == 1000
    assert await cache.get(summary_cache_key("ds_sales", 3)) is not None
    again = await SummaryLoader(cache).load([source(opener), source(opener)])  # another process
    assert again.summaries == first.summaries and opener.calls == 1
    newer = await loader.load([source(opener, version=4)])
    assert newer.summaries[0].version == 4 and opener.calls == 2


async def test_unreadable_dataset_is_reported_and_logged(
    parquet: Path, caplog: pytest.LogCaptureFixture
) -> None:
    loader = SummaryLoader(MemorySummaryCache())
    with caplog.at_level(logging.WARNING, logger="tilegraph.chat.grounding"):
        result = await loader.load(
            [
                source(Opener(None), 2, "ds_gone", "returns"),
                source(Opener(parquet)),
                source(Opener(parquet), 0, "ds_new", "new"),
            ]
        )
    assert [s.name for s in result.summaries] == ["sales"]
    assert result.unavailable == [
        UnavailableDataset("returns", UNREADABLE),
        UnavailableDataset("new", NO_DATA),
    ]
    assert "ds_gone" in caplog.text and "NoSuchKey" in caplog.text


async def test_concurrent_requests_compute_a_summary_once(parquet: Path) -> None:
    loader = SummaryLoader(MemorySummaryCache())
    opener = Opener(parquet)
    results = await asyncio.gather(*(loader.load([source(opener)]) for _ in range(5)))
    assert opener.calls == 1
    assert all(r.summaries == results[0].summaries for r in results)


class BrokenCache:
    async def get(self, key: str) -> str | None:
        raise ConnectionError("redis down")

    async def set(self, key: str, value: str) -> None:
        raise ConnectionError("redis down")


async def test_a_cache_outage_costs_a_recomputation_not_the_answer(parquet: Path) -> None:
    result = await SummaryLoader(BrokenCache()).load([source(Opener(parquet))])
    assert result.summaries[0].row_count == 1000 and result.unavailable == []


async def test_memory_cache_is_bounded() -> None:
    cache = MemorySummaryCache(max_entries=2)
    for key in "abc":
        await cache.set(key, key)
    assert [await cache.get(k) for k in "abc"] == [None, "b", "c"]


async def test_table_sources_work_too() -> None:
    loader_source = DatasetSource("d", "n", 1, lambda: pa.table({"x": [1, 2]}))
    result = await SummaryLoader().load([loader_source])
    assert result.summaries[0].columns[0].sum == 3


async def test_summaries_of_partial_access_are_kept_apart_and_shared_by_access() -> None:
    """A summary over what one reader sees is cached under that access: readers who see the
    same share it, anyone else (the whole dataset included) gets their own."""
    cache = MemorySummaryCache()
    loader = SummaryLoader(cache)
    data = pa.table({"region": ["west", "east", "west"]})
    opened: list[str] = []

    def seen_by(access_key: str | None, rows: int) -> DatasetSource:
        def open_rows() -> pa.Table:
            opened.append(str(access_key))
            return data.slice(0, rows)

        return DatasetSource("ds_r", "r", 1, open_rows, access_key=access_key)

    counts = [
        (await loader.load([seen_by(key, rows)])).summaries[0].row_count
        for key, rows in [(None, 3), ("west", 2), ("east", 1), ("west", 2), (None, 3)]
    ]
    assert counts == [3, 2, 1, 2, 3]
    assert opened == ["None", "west", "east"]
    assert await cache.get(summary_cache_key("ds_r", 1, "west")) is not None
    assert summary_cache_key("ds_r", 1, "west") != summary_cache_key("ds_r", 1)

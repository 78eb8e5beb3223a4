"""Summaries for the datasets a dashboard uses: from the cache by (dataset, version, and the
reader's access when it is partial), else computed in a thread and cached. A dataset that
cannot be read is logged and reported as unavailable, never dropped, so the prompt and the
user both learn about it.

The caller supplies how to open each dataset's data (`DatasetSource.open`, e.g. a
`pyarrow.dataset` over the published Parquet prefix) and a cache (e.g. Redis); this module does
no storage I/O of its own.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from tilegraph.chat.prompt import UnavailableDataset
from tilegraph.chat.summary import (
    DatasetSummary,
    TableLike,
    summarize_table,
    summary_cache_key,
)

log = logging.getLogger(__name__)

UNREADABLE = "its data could not be read"
NO_DATA = "it has no imported data yet"


class SummaryCache(Protocol):
    """Where serialised summaries are kept between requests (Redis in production)."""

    async def get(self, key: str) -> str | bytes | None: ...

    async def set(self, key: str, value: str) -> None: ...


class MemorySummaryCache:
    """A bounded in-process LRU cache (tests, benchmarks, single-process development)."""

    def __init__(self, max_entries: int = 256) -> None:
        self.max_entries = max_entries
        self._items: OrderedDict[str, str] = OrderedDict()

    async def get(self, key: str) -> str | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    async def set(self, key: str, value: str) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)


@dataclass(frozen=True)
class DatasetSource:
    """One dataset version a dashboard's cards use, and how to open its data.

    `open` is blocking (it runs in a worker thread) and returns a table, a
    `pyarrow.dataset.Dataset` (preferred: read batch by batch) or a record batch reader.
    `access_key` is set when `open` gives only part of the data (what one reader may see):
    the summary is cached under it, so readers who see the same share it and nobody else does.
    """

    dataset_id: str
    name: str
    version: int
    open: Callable[[], TableLike]
    column_types: Mapping[str, str] = field(default_factory=dict)
    access_key: str | None = None


@dataclass(frozen=True)
class Grounding:
    """The summaries that could be had, and the datasets that could not, in source order."""

    summaries: list[DatasetSummary]
    unavailable: list[UnavailableDataset]


class SummaryLoader:
    """Loads summaries through a cache. Create one per process: it bounds how many summaries
    are computed at once and computes a summary once when several requests want it."""

    def __init__(self, cache: SummaryCache | None = None, *, max_parallel: int = 2) -> None:
        self.cache = cache
        self._limit = asyncio.Semaphore(max_parallel)
        self._inflight: dict[str, asyncio.Future[DatasetSummary]] = {}

    async def load(self, sources: Sequence[DatasetSource]) -> Grounding:
        unique = list({source.dataset_id: source for source in sources}.values())
        results = await asyncio.gather(*(self._one(source) for source in unique))
        summaries = [r for r in results if isinstance(r, DatasetSummary)]
        unavailable = [r for r in results if isinstance(r, UnavailableDataset)]
        return Grounding(summaries, unavailable)

    async def _one(self, source: DatasetSource) -> DatasetSummary | UnavailableDataset:
        if source.version <= 0:
            return UnavailableDataset(source.name, NO_DATA)
        key = summary_cache_key(source.dataset_id, source.version, source.access_key)
        cached = await self._cached(key)
        if cached is not None:
            return cached
        running = self._inflight.get(key)
        if running is None:
            running = asyncio.ensure_future(self._compute(key, source))
            self._inflight[key] = running
            running.add_done_callback(lambda _: self._inflight.pop(key, None))
        try:
            return await asyncio.shield(running)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning(
                "chat: dataset %s (%s) version %s could not be summarised",
                source.dataset_id,
                source.name,
                source.version,
                exc_info=True,
            )
            return UnavailableDataset(source.name, UNREADABLE)

    async def _cached(self, key: str) -> DatasetSummary | None:
        if self.cache is None:
            return None
        try:
            raw = await self.cache.get(key)
            return DatasetSummary.from_json(raw) if raw is not None else None
        except Exception:
            # A cache outage or an entry of another format costs a recomputation, not an answer.
            log.warning("chat: summary cache read failed for %s", key, exc_info=True)
            return None

    async def _compute(self, key: str, source: DatasetSource) -> DatasetSummary:
        async with self._limit:
            summary = await asyncio.to_thread(_summarize, source)
        if self.cache is not None:
            try:
                await self.cache.set(key, summary.to_json())
            except Exception:
                log.warning("chat: summary cache write failed for %s", key, exc_info=True)
        return summary


def _summarize(source: DatasetSource) -> DatasetSummary:
    return summarize_table(
        source.open(),
        dataset_id=source.dataset_id,
        name=source.name,
        version=source.version,
        column_types=source.column_types,
    )

"""Typed blocks to one Parquet file, in large row groups, published only when complete.

The file is written under a hidden temporary name (pyarrow.dataset and most readers skip names
starting with "."), and renamed to its final name by ``close``; ``abort`` deletes it. A failed
or cancelled ingest therefore never leaves a file that looks like a result.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tilegraph.domain.datasets import ColumnType
from tilegraph.ingest.inference import ARROW_TYPES

#: Flush a row group when the buffered blocks reach either limit. Readers want row groups of
#: ~100k-1M rows; writing each 8 MB block as its own row group was twice as slow, and the
#: last row group is written after the file is parsed, so larger ones lengthen the job.
ROW_GROUP_BYTES = 32 << 20
ROW_GROUP_ROWS = 1 << 20
#: Dictionary encoding pays off for repetitive columns (categories, dates) and only costs on
#: near-unique ones (ids, names, measurements: a hash table is built, then abandoned): on 2.2M
#: rows it made a unique text column 2x slower to write. A column gets it when at most this
#: share of a sample of its values are distinct.
DICTIONARY_MAX_DISTINCT = 0.5
_DICTIONARY_SAMPLE = 20_000


def repetitive_columns(sample: pa.RecordBatch, names: Sequence[str]) -> list[str]:
    """The columns worth dictionary-encoding, judged on the raw text of one block."""
    chosen = []
    for name, column in zip(names, sample.columns, strict=True):
        values = column.slice(0, _DICTIONARY_SAMPLE).drop_null()
        if len(values) == 0:
            chosen.append(name)
            continue
        distinct = pc.count_distinct(values).as_py()
        if distinct <= DICTIONARY_MAX_DISTINCT * len(values):
            chosen.append(name)
    return chosen


def arrow_schema(names: Sequence[str], types: Sequence[ColumnType]) -> pa.Schema:
    """The Parquet schema of a dataset; every field is nullable (nullability is in ColumnSpec)."""
    return pa.schema([pa.field(n, ARROW_TYPES[t]) for n, t in zip(names, types, strict=True)])


class PartWriter:
    """Writes blocks of typed columns into ``out_dir/name``.

    Encoding a row group is handed to a background thread (pyarrow releases the GIL), so the
    caller can convert the next blocks meanwhile; at most one row group waits for it.
    """

    def __init__(
        self,
        out_dir: Path,
        name: str,
        names: Sequence[str],
        types: Sequence[ColumnType],
        *,
        dictionary: Sequence[str] = (),
    ) -> None:
        self.name = name
        self._final = out_dir / name
        self._temp = out_dir / f".{name}.inprogress"
        self._schema = arrow_schema(names, types)
        self._pending: list[pa.RecordBatch] = []
        self._pending_bytes = 0
        self._pending_rows = 0
        self._in_flight: Future[None] | None = None
        out_dir.mkdir(parents=True, exist_ok=True)
        self._writer: pq.ParquetWriter | None = pq.ParquetWriter(
            self._temp, self._schema, compression="snappy", use_dictionary=list(dictionary)
        )
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tilegraph-parquet")

    def write(self, columns: Sequence[pa.Array]) -> None:
        """Buffer one block; a row group is written once enough blocks are buffered."""
        batch = pa.RecordBatch.from_arrays(list(columns), schema=self._schema)
        self._pending.append(batch)
        self._pending_bytes += batch.nbytes
        self._pending_rows += batch.num_rows
        if self._pending_bytes >= ROW_GROUP_BYTES or self._pending_rows >= ROW_GROUP_ROWS:
            self._flush()

    def close(self) -> str:
        """Write what is buffered, close the file and publish it under its final name."""
        try:
            self._flush()
            self._wait()
        finally:
            self._executor.shutdown()
        assert self._writer is not None
        self._writer.close()
        self._writer = None
        os.replace(self._temp, self._final)
        return self.name

    def abort(self) -> None:
        """Drop everything written so far."""
        self._pending.clear()
        with contextlib.suppress(Exception):
            self._wait()
        self._executor.shutdown()
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.close()
            self._writer = None
        with contextlib.suppress(FileNotFoundError):
            self._temp.unlink()

    def _flush(self) -> None:
        if not self._pending:
            return
        table = pa.Table.from_batches(self._pending, schema=self._schema)
        self._pending = []
        self._pending_bytes = self._pending_rows = 0
        self._wait()
        self._in_flight = self._executor.submit(self._write_row_group, table)

    def _wait(self) -> None:
        in_flight, self._in_flight = self._in_flight, None
        if in_flight is not None:
            in_flight.result()

    def _write_row_group(self, table: pa.Table) -> None:
        assert self._writer is not None
        self._writer.write_table(table, row_group_size=max(table.num_rows, 1))

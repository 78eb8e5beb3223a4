"""Orchestration: sample → dialect → passes over the file → Parquet, with progress and cancel.

A pass keeps several cores busy: pyarrow parses blocks on its own thread, the calling thread
hands each block to a worker thread that types it, and Parquet row groups are encoded on a
third thread (``writer.py``). All the heavy lifting is in pyarrow, numpy and the codecs, which
release the GIL, so the threads really run in parallel; queues between them are short, so
memory stays bounded whatever the file size.

``ingest_csv`` is optimistic. Types must hold for the whole file, but they rarely change after
the first few blocks, so it decides the types from the first ``WARMUP_BYTES`` of text, then
converts and writes every block while checking that it still fits. If all blocks fit, the file
was read once. If one does not (say, a "1.5" after a million integers), writing stops, the rest
of the file is only typed, and a second pass writes everything with the final types: two passes
only for files that need them.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Protocol, TypeVar

import pyarrow as pa

from tilegraph.domain.datasets import ColumnSpec, ColumnType
from tilegraph.ingest.blocks import BlockReader, CsvFormat, RecordTooLarge
from tilegraph.ingest.encoding import (
    bom_encoding,
    check_not_binary,
    check_text,
    decode_sample,
    detect_encoding,
    normalize_encoding,
    read_sample,
)
from tilegraph.ingest.errors import IngestCancelled, IngestFailed
from tilegraph.ingest.inference import PARSERS, TypeTracker
from tilegraph.ingest.models import (
    PART_FILE_NAME,
    IngestOptions,
    IngestProgress,
    IngestResult,
    SchemaScan,
)
from tilegraph.ingest.sniff import sniff
from tilegraph.ingest.writer import PartWriter, repetitive_columns

_T = TypeVar("_T")
ProgressCallback = Callable[[IngestProgress], None]
CancelCheck = Callable[[], bool]

#: Blocks grow up to this size for files with huge records (see ``_growing_blocks``).
MAX_BLOCK_SIZE = 128 << 20
#: Text seen before the optimistic pass commits to column types.
WARMUP_BYTES = 32 << 20
#: Progress is reported at most this often while blocks go by, and once at the end.
PROGRESS_INTERVAL = 0.2
# Blocks waiting for the worker thread; bounds memory when typing is slower than parsing.
_QUEUE_BLOCKS = 2


class _Plan:
    """What the sample told us about the file."""

    def __init__(self, path: Path, options: IngestOptions) -> None:
        self.total_bytes = path.stat().st_size
        if self.total_bytes == 0:
            raise IngestFailed("no data rows: the file is empty")
        if options.block_size < 1 << 10:
            raise ValueError("block_size must be at least 1 KiB")
        sample, complete = read_sample(path)
        forced = normalize_encoding(options.encoding) if options.encoding else None
        check_not_binary(sample, forced or bom_encoding(sample))
        self.encoding = forced or detect_encoding(sample, complete=complete)
        text = decode_sample(sample, self.encoding, complete=complete)
        check_text(text)
        dialect = sniff(
            text,
            complete=complete,
            delimiter=options.delimiter,
            max_columns=options.max_columns,
            null_values=options.null_values,
        )
        self.delimiter = dialect.delimiter
        self.has_header = dialect.has_header
        self.names = dialect.names
        self.format = CsvFormat(
            path,
            self.encoding,
            dialect.delimiter,
            len(dialect.names),
            options.block_size,
            options.null_values,
        )


def scan_csv(
    path: Path,
    options: IngestOptions,
    *,
    on_progress: ProgressCallback | None = None,
    should_cancel: CancelCheck | None = None,
) -> SchemaScan:
    """Infer the schema of a CSV file without writing anything (the re-import dry run).

    Reads the whole file once; raises IngestFailed for files that ``ingest_csv`` would refuse
    and IngestCancelled when ``should_cancel`` returns True (polled once per block).
    """
    path = Path(path)
    progress = _Progress(on_progress, path.stat().st_size)

    def attempt(block_size: int) -> SchemaScan:
        plan = _Plan(path, replace(options, block_size=block_size))
        tracker = TypeTracker(len(plan.names))
        rows = _run_pass(plan, _ScanStage(tracker), progress, should_cancel)
        return SchemaScan(
            columns=_columns(plan.names, tracker),
            row_count=rows,
            encoding=plan.encoding,
            delimiter=plan.delimiter,
            has_header=plan.has_header,
        )

    scan = _growing_blocks(attempt, options.block_size, progress)
    progress.finish(scan.row_count)
    return scan


def ingest_csv(
    path: Path,
    out_dir: Path,
    options: IngestOptions,
    *,
    on_progress: ProgressCallback | None = None,
    should_cancel: CancelCheck | None = None,
) -> IngestResult:
    """Convert a CSV file into typed Parquet in ``out_dir``; meant to run in a worker thread.

    Memory stays flat whatever the file size (the file is streamed in ``block_size`` blocks).
    ``on_progress`` is called every ``PROGRESS_INTERVAL`` seconds while blocks go by (a block
    takes well under that) and once at the end with fraction 1.0; ``should_cancel`` is polled
    once per block and raises IngestCancelled when it returns True. Every user-facing failure
    is an IngestFailed.

    On failure or cancellation no result is published: ``out_dir`` holds no
    ``part-*.parquet`` file (only, at worst, a hidden ``.part-*.inprogress`` left by a killed
    process); the caller is expected to discard the directory anyway.
    """
    path, out_dir = Path(path), Path(out_dir)
    progress = _Progress(on_progress, path.stat().st_size)

    def attempt(block_size: int) -> IngestResult:
        plan = _Plan(path, replace(options, block_size=block_size))
        tracker = TypeTracker(len(plan.names))
        optimistic = _OptimisticStage(tracker, out_dir, plan.names, progress)
        rows = _run_pass(plan, optimistic, progress, should_cancel)
        published = optimistic.published
        if published is None:
            progress.second_pass()
            final = _FinalStage(out_dir, plan.names, tracker.types())
            _run_pass(plan, final, progress, should_cancel)
            published = final.published
        assert published is not None
        return IngestResult(
            columns=_columns(plan.names, tracker),
            row_count=rows,
            bytes_read=plan.total_bytes,
            encoding=plan.encoding,
            delimiter=plan.delimiter,
            files=[published],
        )

    result = _growing_blocks(attempt, options.block_size, progress)
    progress.finish(result.row_count)
    return result


def _growing_blocks(attempt: Callable[[int], _T], block_size: int, progress: _Progress) -> _T:
    """Run ``attempt``, again with 4x larger blocks while a record does not fit in one.

    pyarrow cannot parse a record (e.g. a huge quoted cell) spanning two blocks. Retrying
    only such files keeps the memory of all others bounded by the configured block size.
    """
    while True:
        try:
            return attempt(block_size)
        except RecordTooLarge:
            if block_size >= MAX_BLOCK_SIZE:
                raise
            block_size = min(block_size * 4, MAX_BLOCK_SIZE)
            progress.second_pass()


def _columns(names: Sequence[str], tracker: TypeTracker) -> list[ColumnSpec]:
    return [
        ColumnSpec(name=n, type=t, nullable=null)
        for n, t, null in zip(names, tracker.types(), tracker.has_null, strict=True)
    ]


def _convert(batch: pa.RecordBatch, types: Sequence[ColumnType]) -> list[pa.Array]:
    """Convert a block whose columns are known to fit ``types``."""
    return [_convert_column(arr, t) for arr, t in zip(batch.columns, types, strict=True)]


def _convert_column(arr: pa.Array, wanted: ColumnType) -> pa.Array:
    converted = PARSERS[wanted](arr)
    if converted is None:  # the rules are per value and the types a lattice: cannot happen
        raise RuntimeError(f"a block no longer fits the inferred type {wanted.value}")
    return converted


# -- stages: what the worker thread does with each block -------------------------------------


class _Stage(Protocol):
    def handle(self, batch: pa.RecordBatch) -> None: ...

    def finish(self) -> None: ...

    def abort(self) -> None: ...


class _ScanStage:
    """Type the blocks; write nothing."""

    def __init__(self, tracker: TypeTracker) -> None:
        self._tracker = tracker

    def handle(self, batch: pa.RecordBatch) -> None:
        self._tracker.observe(batch)

    def finish(self) -> None:
        pass

    def abort(self) -> None:
        pass


class _OptimisticStage:
    """Type the first blocks, then write every block with those types while they still fit."""

    def __init__(
        self, tracker: TypeTracker, out_dir: Path, names: list[str], progress: _Progress
    ) -> None:
        self._tracker = tracker
        self._out_dir = out_dir
        self._names = names
        self._progress = progress
        self._warmup: list[tuple[pa.RecordBatch, list[tuple[ColumnType | None, pa.Array | None]]]]
        self._warmup = []
        self._warmup_bytes = 0
        self._types: list[ColumnType] | None = None
        self._writer: PartWriter | None = None
        self.holding = True
        self.published: str | None = None

    def handle(self, batch: pa.RecordBatch) -> None:
        if self._types is None:
            self._warmup.append((batch, self._tracker.observe(batch)))
            self._warmup_bytes += batch.nbytes
            if self._warmup_bytes >= WARMUP_BYTES:
                self._commit()
        elif not self.holding:
            self._tracker.observe(batch)
        else:
            columns = self._tracker.convert(batch, self._types)
            if columns is None:
                self.holding = False
                self._progress.speculation_failed()
                self.abort()
            else:
                assert self._writer is not None
                self._writer.write(columns)

    def finish(self) -> None:
        if self._types is None:
            self._commit()
        if self.holding:
            assert self._writer is not None
            self.published = self._writer.close()

    def abort(self) -> None:
        self._warmup.clear()
        if self._writer is not None:
            self._writer.abort()
            self._writer = None

    def _commit(self) -> None:
        self._types = self._tracker.types()
        self._writer = PartWriter(
            self._out_dir,
            PART_FILE_NAME,
            self._names,
            self._types,
            dictionary=repetitive_columns(self._warmup[0][0], self._names) if self._warmup else (),
        )
        for batch, observed in self._warmup:
            columns = []
            for arr, wanted, (found, values) in zip(
                batch.columns, self._types, observed, strict=True
            ):
                if found is not wanted or values is None:
                    values = _convert_column(arr, wanted)
                columns.append(values)
            self._writer.write(columns)
        self._warmup.clear()


class _FinalStage:
    """Write every block with the types the first pass settled on."""

    def __init__(self, out_dir: Path, names: list[str], types: list[ColumnType]) -> None:
        self._out_dir = out_dir
        self._names = names
        self._types = types
        self._writer: PartWriter | None = None
        self.published: str | None = None

    def handle(self, batch: pa.RecordBatch) -> None:
        if self._writer is None:
            self._writer = PartWriter(
                self._out_dir,
                PART_FILE_NAME,
                self._names,
                self._types,
                dictionary=repetitive_columns(batch, self._names),
            )
        self._writer.write(_convert(batch, self._types))

    def finish(self) -> None:
        assert self._writer is not None  # a pass with no rows fails before finishing
        self.published = self._writer.close()

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.abort()


# -- one pass over the file ------------------------------------------------------------------


def _run_pass(
    plan: _Plan, stage: _Stage, progress: _Progress, should_cancel: CancelCheck | None
) -> int:
    """Read every block of the file and hand it to ``stage`` on a worker thread.

    Returns the number of data rows. On any exception, including IngestCancelled, the stage
    is aborted (which deletes its unpublished file) before the exception propagates.
    """
    worker = _Worker(stage)
    rows = 0
    try:
        _check_cancel(should_cancel)
        with BlockReader(plan.format) as reader:
            first = True
            for batch in reader:
                _check_cancel(should_cancel)
                if first and plan.has_header:
                    batch = batch.slice(1)
                first = False
                if batch.num_rows:
                    worker.submit(batch)
                    rows += batch.num_rows
                progress.update(reader.bytes_read, rows)
        if rows == 0:
            raise IngestFailed(
                "no data rows: the file has a header but no data"
                if plan.has_header
                else "no data rows"
            )
        worker.finish()
    except BaseException:
        worker.abort()
        raise
    return rows


def _check_cancel(should_cancel: CancelCheck | None) -> None:
    if should_cancel is not None and should_cancel():
        raise IngestCancelled("the import was cancelled")


_DONE = object()
_STOP = object()


class _Worker:
    """A thread that feeds queued blocks to a stage; its exceptions surface in the caller."""

    def __init__(self, stage: _Stage) -> None:
        self._stage = stage
        self._queue: queue.Queue[object] = queue.Queue(maxsize=_QUEUE_BLOCKS)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="tilegraph-ingest", daemon=True)
        self._thread.start()

    def submit(self, batch: pa.RecordBatch) -> None:
        self._put(batch)

    def finish(self) -> None:
        """Wait until every block is handled and the stage finished; re-raise its failure."""
        self._put(_DONE)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def abort(self) -> None:
        """Stop the thread (dropping queued blocks) and let the stage clean up."""
        while self._thread.is_alive():
            try:
                while True:
                    self._queue.get_nowait()
            except queue.Empty:
                pass
            try:
                self._queue.put(_STOP, timeout=0.1)
            except queue.Full:
                continue
            self._thread.join()
        self._stage.abort()

    def _put(self, item: object) -> None:
        while True:
            self._raise_if_failed()
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error
        if not self._thread.is_alive():
            raise RuntimeError("the ingest worker thread stopped unexpectedly")

    def _run(self) -> None:
        try:
            while True:
                item = self._queue.get()
                if item is _STOP:
                    return
                if item is _DONE:
                    self._stage.finish()
                    return
                assert isinstance(item, pa.RecordBatch)
                self._stage.handle(item)
        except BaseException as e:  # handed to the caller's thread
            self._error = e


# -- progress --------------------------------------------------------------------------------


class _Progress:
    """Maps bytes consumed in the current pass onto one 0..1 fraction for the whole job.

    A pass first covers the whole range. If the optimistic pass fails at byte ``p``, what is
    left is the rest of this pass plus a full second pass, so the range still ahead is shared
    out in proportion to the bytes each will read; the fraction never moves backwards.
    """

    def __init__(self, callback: ProgressCallback | None, total_bytes: int) -> None:
        self._callback = callback
        self._total = total_bytes
        self._lock = threading.Lock()
        self._from_fraction, self._to_fraction, self._from_bytes = 0.0, 1.0, 0
        self._pass_bytes = 0
        self.fraction = 0.0
        self.rows = 0
        self._last_report = float("-inf")

    def update(self, pass_bytes: int, rows: int) -> None:
        with self._lock:
            self._pass_bytes = pass_bytes
            span = max(self._total - self._from_bytes, 1)
            done = min(max(pass_bytes - self._from_bytes, 0) / span, 1.0)
            fraction = self._from_fraction + (self._to_fraction - self._from_fraction) * done
            self.fraction = max(self.fraction, min(fraction, 1.0))
            self.rows = max(self.rows, rows)
        if time.monotonic() - self._last_report >= PROGRESS_INTERVAL:
            self._report()

    def speculation_failed(self) -> None:
        """Called from the worker thread: a second pass will be needed."""
        with self._lock:
            remaining = self._total - self._pass_bytes
            share = remaining / max(remaining + self._total, 1)
            self._from_fraction = self.fraction
            self._to_fraction = self.fraction + (1.0 - self.fraction) * share
            self._from_bytes = self._pass_bytes

    def second_pass(self) -> None:
        with self._lock:
            self._from_fraction, self._to_fraction, self._from_bytes = self.fraction, 1.0, 0

    def finish(self, rows: int) -> None:
        with self._lock:
            self.fraction = 1.0
            self.rows = rows
        self._report()

    def _report(self) -> None:
        self._last_report = time.monotonic()
        if self._callback is not None:
            self._callback(
                IngestProgress(
                    bytes_processed=round(self.fraction * self._total),
                    rows_processed=self.rows,
                    total_bytes=self._total,
                    fraction=self.fraction,
                )
            )

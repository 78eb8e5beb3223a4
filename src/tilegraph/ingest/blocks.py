"""Blocks of the CSV as record batches of raw text columns, with failures made user-facing.

Every column is read as text: typing is our own rule set (``inference.py``), applied per block,
so the reader never guesses a type from the first block and then trips over a later one. The
parser runs with ``use_threads=False``: the streaming reader is no faster with threads here, and
without them pyarrow reports the record number of a ragged row.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from tilegraph.ingest.errors import IngestFailed
from tilegraph.ingest.nulls import NullCells
from tilegraph.ingest.source import SourceStream, locate_decode_error, needs_transcoding

#: Blocks pyarrow may read ahead of the batch being processed.
READ_AHEAD_BLOCKS = 3


@dataclass(frozen=True)
class CsvFormat:
    """Everything needed to parse the file; decided once from the sample."""

    path: Path
    encoding: str
    delimiter: str
    column_count: int
    block_size: int
    null_values: tuple[str, ...]  # cells read as null ("" for the empty cell)


@dataclass(frozen=True)
class _BadRow:
    expected: int
    actual: int
    number: int | None  # pyarrow's record number: blank lines and line breaks in values not counted
    text: str


class BlockReader:
    """Iterate the file as record batches of ``column_count`` string columns (nulls where a cell
    is one of the format's ``null_values``).

    Use as a context manager so the file is closed and pyarrow's read-ahead released even when
    the caller stops early.
    """

    def __init__(self, fmt: CsvFormat) -> None:
        self._fmt = fmt
        self._bad_row: _BadRow | None = None
        self._null_cells = NullCells(fmt.null_values)
        self._stream = SourceStream(
            fmt.path,
            fmt.encoding,
            transcode=needs_transcoding(fmt.encoding),
            max_ahead=READ_AHEAD_BLOCKS,
        )
        self._reader: Any = None

    @property
    def bytes_read(self) -> int:
        """Source bytes consumed so far (a few blocks ahead of the batches handed out)."""
        return self._stream.bytes_read

    def __enter__(self) -> BlockReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._stream.close()
        self._reader = None

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        self._stream.set_consumer()
        while True:
            self._stream.consumer_waiting(True)
            try:
                if self._reader is None:
                    self._reader = _open(self._fmt, self._stream, self._on_bad_row)
                batch = self._reader.read_next_batch()
            except StopIteration:
                return
            except IngestFailed:
                raise
            except Exception as e:  # pyarrow raises ArrowInvalid or re-raises our stream's error
                raise self._failure(e) from None
            finally:
                self._stream.consumer_waiting(False)
            self._stream.advance()
            yield self._null_cells.mark(batch)

    def _on_bad_row(self, row: Any) -> str:
        if self._bad_row is None:
            self._bad_row = _BadRow(row.expected_columns, row.actual_columns, row.number, row.text)
        return "error"

    def _failure(self, error: Exception) -> IngestFailed:
        if self._stream.error is not None:
            return self._stream.error
        if self._bad_row is not None:
            return _ragged_row(self._fmt, self._bad_row)
        if "invalid UTF8" in str(error):
            located = locate_decode_error(self._fmt.path, self._fmt.encoding)
            if located is not None:
                return located
            return IngestFailed(f"the file is not valid {self._fmt.encoding} text")
        if "straddling object" in str(error):
            return RecordTooLarge(
                f"a CSV record is larger than the {self._fmt.block_size:,}-byte block size"
            )
        return IngestFailed(f"could not read the CSV file: {error}")


class RecordTooLarge(IngestFailed):
    """One record does not fit in a block: pyarrow cannot parse it; larger blocks can."""


def _open(
    fmt: CsvFormat, stream: SourceStream, on_bad_row: Any, *, ignore_empty_lines: bool = True
) -> Any:
    names = [f"f{i}" for i in range(fmt.column_count)]
    return pcsv.open_csv(
        stream,
        read_options=pcsv.ReadOptions(
            column_names=names, block_size=fmt.block_size, use_threads=False
        ),
        parse_options=pcsv.ParseOptions(
            delimiter=fmt.delimiter,
            quote_char='"',
            double_quote=True,
            escape_char=False,
            newlines_in_values=True,
            ignore_empty_lines=ignore_empty_lines,
            invalid_row_handler=on_bad_row,
        ),
        convert_options=pcsv.ConvertOptions(
            column_types={name: pa.string() for name in names},
            # Null cells are marked by ``NullCells``: letting pyarrow match every text value
            # against the null list cost a third of the parsing time.
            strings_can_be_null=False,
            check_utf8=True,
        ),
    )


def _ragged_row(fmt: CsvFormat, bad: _BadRow) -> IngestFailed:
    line = physical_line_of_bad_row(fmt)
    found = f"expected {bad.expected} fields (as in the first row) but found {bad.actual}"
    if line is None:
        snippet = bad.text if len(bad.text) <= 80 else bad.text[:77] + "..."
        return IngestFailed(f"a row has the wrong number of fields: {found}: {snippet!r}")
    return IngestFailed(f"line {line}: {found}", line=line)


def physical_line_of_bad_row(fmt: CsvFormat) -> int | None:
    """The editor line on which the first ragged record starts (error path: re-reads the file).

    pyarrow numbers records, skipping blank lines and counting a quoted value that spans lines
    once. Re-reading with blank lines kept as records gives the record number counting blank
    lines; adding the line breaks inside the values of the records before it gives the line.
    """
    blank: list[int] = []
    target: list[int] = []

    def on_bad_row(row: Any) -> str:
        if row.text == "" and row.number is not None:
            blank.append(row.number)
        elif not target and row.number is not None:
            target.append(row.number)
        return "skip"

    stream = SourceStream(fmt.path, fmt.encoding, transcode=needs_transcoding(fmt.encoding))
    try:
        reader = _open(fmt, stream, on_bad_row, ignore_empty_lines=False)
        seen = embedded = 0
        for batch in reader:
            take = batch.num_rows
            if target:
                wanted = target[0] - 1 - sum(1 for n in blank if n < target[0])
                take = max(0, min(take, wanted - seen))
            embedded += _line_breaks(batch.slice(0, take))
            seen += take
            if target and take < batch.num_rows:
                break
    except Exception:
        return None
    finally:
        stream.close()
    return target[0] + embedded if target else None


def _line_breaks(batch: pa.RecordBatch) -> int:
    total = 0
    for column in batch.columns:
        total += int(pc.sum(pc.count_substring(column, "\n")).as_py() or 0)
    return total

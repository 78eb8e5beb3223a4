"""Options and results of an ingest, as plain frozen dataclasses (no behaviour)."""

from __future__ import annotations

from dataclasses import dataclass

from tilegraph.domain.datasets import DEFAULT_NULL_VALUES, MAX_COLUMNS, ColumnSpec

#: The name of the only Parquet file an ingest writes into ``out_dir``.
PART_FILE_NAME = "part-00000.parquet"


@dataclass(frozen=True)
class IngestOptions:
    """What the user may force; anything left as None is detected from the file."""

    encoding: str | None = None  # detected when None (the user may force e.g. "cp932")
    delimiter: str | None = None  # detected when None
    block_size: int = 8 << 20  # pyarrow CSV block size; peak memory scales with it
    max_columns: int = MAX_COLUMNS  # a wider file fails while its header is sniffed
    null_values: tuple[str, ...] = DEFAULT_NULL_VALUES  # cells read as null, "" the empty one


@dataclass(frozen=True)
class IngestProgress:
    """A progress report.

    ``bytes_processed`` is ``fraction * total_bytes`` so it only ever grows, even when the job
    needs a second pass over the file; ``rows_processed`` is the number of data rows found so far.
    """

    bytes_processed: int
    rows_processed: int
    total_bytes: int
    fraction: float  # 0.0..1.0 over the whole job (all passes)


@dataclass(frozen=True)
class SchemaScan:
    """The result of the inference pass alone (the re-import dry run)."""

    columns: list[ColumnSpec]
    row_count: int
    encoding: str
    delimiter: str
    has_header: bool


@dataclass(frozen=True)
class IngestResult:
    """A finished ingest: the schema and the Parquet files now in ``out_dir``."""

    columns: list[ColumnSpec]
    row_count: int
    bytes_read: int  # size of the source file (each byte is read once or twice, see pipeline)
    encoding: str
    delimiter: str
    files: list[str]  # Parquet file names written into out_dir, e.g. ["part-00000.parquet"]

"""Streaming CSV → typed Parquet: encoding detection, sniffing, type inference, Parquet writing.

Callers use ``scan_csv`` (schema only, for the re-import dry run) and ``ingest_csv``; both are
blocking, CPU-bound and meant to run in a worker thread, never on an event loop.
"""

from tilegraph.ingest.errors import IngestCancelled, IngestFailed
from tilegraph.ingest.models import IngestOptions, IngestProgress, IngestResult, SchemaScan
from tilegraph.ingest.pipeline import ingest_csv, scan_csv

__all__ = [
    "IngestCancelled",
    "IngestFailed",
    "IngestOptions",
    "IngestProgress",
    "IngestResult",
    "SchemaScan",
    "ingest_csv",
    "scan_csv",
]

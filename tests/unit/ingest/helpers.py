"""Helpers for the ingest tests: fixture files are generated here, never checked in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tilegraph.ingest import IngestOptions, IngestResult, ingest_csv


def write(path: Path, content: str | bytes, encoding: str = "utf-8") -> Path:
    """Write ``content`` (text is encoded with ``encoding``, bytes are written as they are)."""
    path.write_bytes(content if isinstance(content, bytes) else content.encode(encoding))
    return path


def ingest(path: Path, out_dir: Path, **options: Any) -> IngestResult:
    return ingest_csv(path, out_dir, IngestOptions(**options))


def read_back(out_dir: Path, result: IngestResult) -> pa.Table:
    """The Parquet files the ingest published, as one table."""
    assert result.files, "no file was published"
    return pa.concat_tables([pq.read_table(out_dir / name) for name in result.files])


def column_types(result: IngestResult) -> dict[str, str]:
    return {c.name: c.type.value for c in result.columns}


def published_files(out_dir: Path) -> list[str]:
    """Files a reader of out_dir would pick up (hidden temporaries excluded)."""
    if not out_dir.exists():
        return []
    return sorted(p.name for p in out_dir.iterdir() if not p.name.startswith((".", "_")))

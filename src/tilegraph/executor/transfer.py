"""Data in and out of a child: the job message, each input table as an Arrow IPC stream in
its own memfd, and one empty output memfd the child writes its HTML or result table into.

The output comes from an untrusted process: its claimed length is checked against the memfd
and the output cap, and a result table is fully validated before the worker touches it.
"""

from __future__ import annotations

import asyncio
import mmap
import os
from typing import Any

import pyarrow as pa

from tilegraph.domain.card_outputs import CardOutputError, check_metrics, check_table_columns
from tilegraph.domain.executions import ExecutionError, ExecutionErrorCode

from .jobs import CardJob, CardOutput, TransformJob, TransformOutput, filters_to_wire
from .limits import SandboxLimits
from .outcome import Outcome, error
from .protocol import close_fds, table_offset

_THREAD_WRITE_BYTES = 4 * 1024 * 1024  # serialise inputs bigger than this off the event loop

_ALLOWED = (
    pa.types.is_integer,
    pa.types.is_floating,
    pa.types.is_boolean,
    pa.types.is_date,
    pa.types.is_timestamp,
    pa.types.is_string,
    pa.types.is_large_string,
)


def job_frame(
    job: CardJob | TransformJob, limits: SandboxLimits, slot: int
) -> tuple[dict[str, Any], list[pa.Table]]:
    """The job message for a child, and the tables that go with it as memfds (in order)."""
    if isinstance(job, CardJob):
        kind, tables, names = (
            "card",
            list(job.inputs),
            [f"input_{i}" for i in range(len(job.inputs))],
        )
        filters = filters_to_wire(job.filters)
        plotly_src = job.plotly_src
    else:
        kind, tables, names = (
            "transform",
            [t for _, t in job.inputs],
            [n for n, _ in job.inputs],
        )
        filters = {}
        plotly_src = None
    header = {
        "op": "job",
        "kind": kind,
        "code": job.code,
        "params": job.params,
        "filters": filters,
        "plotly_src": plotly_src,
        "slot": slot,
        "limits": limits.to_wire(),
        "inputs": names,
    }
    return header, tables


def _write_ipc(table: pa.Table) -> int:
    """One input table as an Arrow IPC stream in a fresh memfd."""
    fd = os.memfd_create("tilegraph-input", os.MFD_CLOEXEC)
    try:
        with (
            os.fdopen(fd, "wb", buffering=0, closefd=False) as sink,
            pa.ipc.new_stream(sink, table.schema) as writer,
        ):
            writer.write_table(table)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _write_all_ipc(tables: list[pa.Table]) -> list[int]:
    fds: list[int] = []
    try:
        for table in tables:
            fds.append(_write_ipc(table))
    except BaseException:
        close_fds(fds)
        raise
    return fds


async def write_inputs(tables: list[pa.Table]) -> list[int]:
    """One memfd per input table, in order; the caller closes them."""
    if sum(t.nbytes for t in tables) > _THREAD_WRITE_BYTES:
        return await asyncio.to_thread(_write_all_ipc, tables)
    return _write_all_ipc(tables)


def output_memfd() -> int:
    """The empty memfd a child writes its result into; the caller closes it."""
    return os.memfd_create("tilegraph-output", os.MFD_CLOEXEC)


def _read_card_html(fd: int, length: int) -> str:
    chunks: list[bytes] = []
    offset = 0
    while offset < length:
        chunk = os.pread(fd, length - offset, offset)
        if not chunk:
            break
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


def _read_transform_table(fd: int, length: int, offset: int = 0) -> pa.Table:
    """Zero-copy: the table's buffers point into a read-only map of the memfd (the stream's
    ``length`` bytes from ``offset``).

    The bytes come from an untrusted process, so the table is fully validated (offsets,
    UTF-8, lengths) before anything in the worker touches its values.
    """
    if length == 0:
        raise ValueError("empty result stream")
    view = mmap.mmap(fd, offset + length, mmap.MAP_SHARED, mmap.PROT_READ)
    stream = pa.py_buffer(view).slice(offset, length)
    table = pa.ipc.open_stream(stream).read_all()
    table.validate(full=True)
    for column in table.schema:
        if not any(check(column.type) for check in _ALLOWED):
            raise ValueError(f"column {column.name!r} has unsupported type {column.type}")
    return table


def read_output(reply: dict[str, Any], kind: str, out_fd: int, limits: SandboxLimits) -> Outcome:
    """The result a child's successful reply points at in ``out_fd``, trusting none of it."""
    length = reply.get("length")
    size = os.fstat(out_fd).st_size
    if reply.get("kind") != kind or not isinstance(length, int) or not 0 <= length <= size:
        return None, error(ExecutionErrorCode.BAD_RESULT, "The sandbox returned no usable result.")
    if length > limits.max_output_bytes:
        return None, error(
            ExecutionErrorCode.OUTPUT_TOO_LARGE,
            f"The result is {length} bytes; the limit is {limits.max_output_bytes}.",
        )
    if kind == "card":
        return _read_card(reply, out_fd, length, size, limits)
    try:
        table = _read_transform_table(out_fd, length)
    except (ValueError, OSError, pa.ArrowException) as exc:
        return None, error(ExecutionErrorCode.BAD_RESULT, f"Unreadable result table: {exc}")
    return TransformOutput(table), None


def _read_card(
    reply: dict[str, Any], out_fd: int, length: int, size: int, limits: SandboxLimits
) -> Outcome:
    """The HTML, then the table (if any) at its aligned offset; metrics from the reply."""
    used = reply.get("used_columns") or []
    applicable = reply.get("filter_applicable") or []
    if not (_is_str_list(used) and _is_str_list(applicable)):
        return None, error(ExecutionErrorCode.BAD_RESULT, "Malformed column lists.")
    try:
        metrics = check_metrics(reply.get("metrics"))
    except CardOutputError as exc:
        return None, error(ExecutionErrorCode.BAD_RESULT, str(exc))
    table_length = reply.get("table_length")
    table, problem = None, None
    if table_length is not None:
        table, problem = _read_card_table(out_fd, length, table_length, size, limits)
    if problem is not None:
        return None, problem
    html = _read_card_html(out_fd, length)
    return CardOutput(html, list(used), list(applicable), metrics, table), None


def _read_card_table(
    out_fd: int, html_length: int, table_length: object, size: int, limits: SandboxLimits
) -> tuple[pa.Table | None, ExecutionError | None]:
    offset = table_offset(html_length)
    if not isinstance(table_length, int) or isinstance(table_length, bool) or table_length <= 0:
        return None, error(ExecutionErrorCode.BAD_RESULT, "The sandbox returned no usable table.")
    if table_length > limits.max_table_bytes:
        return None, error(
            ExecutionErrorCode.OUTPUT_TOO_LARGE,
            f"The card's table (HTMLResult.table) is {table_length} bytes; the limit is "
            f"{limits.max_table_bytes}.",
        )
    if offset + table_length > size:
        return None, error(ExecutionErrorCode.BAD_RESULT, "The sandbox returned no usable table.")
    try:
        table = _read_transform_table(out_fd, table_length, offset)
        check_table_columns(table.column_names)
    except CardOutputError as exc:
        return None, error(ExecutionErrorCode.BAD_RESULT, str(exc))
    except (ValueError, OSError, pa.ArrowException) as exc:
        return None, error(ExecutionErrorCode.BAD_RESULT, f"Unreadable card table: {exc}")
    return table, None


def _is_str_list(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)

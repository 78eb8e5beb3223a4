"""Delimiter, header and column names, decided from the decoded sample of the file.

The sample is parsed with the real CSV quoting rules for each candidate delimiter, so commas
inside quoted fields cannot make a semicolon file look comma-separated.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import pyarrow as pa

from tilegraph.domain.datasets import DEFAULT_NULL_VALUES, ColumnType
from tilegraph.ingest.errors import IngestFailed
from tilegraph.ingest.inference import infer_block, join

#: Candidate delimiters, most usual first (the order breaks ties).
DELIMITERS = (",", "\t", ";", "|")
#: Records of the sample looked at; enough to see typed columns, cheap to parse in Python.
SNIFF_RECORDS = 200
_FIELD_LIMIT = 4 << 20


@dataclass(frozen=True)
class Dialect:
    """How to read the file: what separates fields, and what the columns are called."""

    delimiter: str
    has_header: bool
    names: list[str]  # unique, non-empty column names, one per field of the first record


def sniff(
    text: str,
    *,
    complete: bool,
    delimiter: str | None = None,
    max_columns: int | None = None,
    null_values: Collection[str] = DEFAULT_NULL_VALUES,
) -> Dialect:
    """Decide the dialect from the sample ``text`` (``complete``: it is the whole file);
    cells in ``null_values`` count as missing, as they will when the file is typed.

    Raises IngestFailed("no data rows ...") when the sample holds no record at all, and when
    the first record has more than ``max_columns`` fields.
    """
    if delimiter is not None:
        _check_delimiter(delimiter)
        chosen = delimiter
        records = _records(text, chosen, complete=complete)
    else:
        chosen, records = _pick_delimiter(text, complete=complete)
    if not records:
        raise IngestFailed("no data rows: the file has no CSV records")
    if max_columns is not None and len(records[0]) > max_columns:
        raise IngestFailed(
            f"too many columns: the first line has {len(records[0])} fields and a dataset "
            f"may have at most {max_columns}",
            line=1,
        )
    has_header = detect_header(records, null_values)
    generated = [f"column_{i}" for i in range(1, len(records[0]) + 1)]
    names = unique_names(records[0]) if has_header else generated
    return Dialect(delimiter=chosen, has_header=has_header, names=names)


def unique_names(raw: Sequence[str]) -> list[str]:
    """Header names made usable: stripped, never blank, never repeated.

    A blank name becomes ``column_<position>``; a repeated one gets ``_2``, ``_3``… so that
    ``["a", "a", "", " "]`` becomes ``["a", "a_2", "column_3", "column_4"]``.
    """
    names: list[str] = []
    used: set[str] = set()
    for position, name in enumerate(raw, start=1):
        base = name.strip() or f"column_{position}"
        candidate, suffix = base, 2
        while candidate in used:
            candidate, suffix = f"{base}_{suffix}", suffix + 1
        used.add(candidate)
        names.append(candidate)
    return names


def detect_header(
    records: Sequence[Sequence[str]], null_values: Collection[str] = DEFAULT_NULL_VALUES
) -> bool:
    """Whether the first record names the columns rather than holding data.

    Evidence for a header: a text cell on top of a column whose other values are all numbers,
    booleans or dates. Evidence against: a typed cell on top of a column of the same kind. With
    no typed column either way (all text), a first row of distinct, non-blank cells is taken
    as a header, as almost every exported CSV has one.
    """
    first, rest = records[0], records[1:]
    nulls = frozenset(null_values)
    header_votes = data_votes = 0
    for j, cell in enumerate(first):
        top = _column_type([cell], nulls)
        below = _column_type([r[j] for r in rest if j < len(r)], nulls)
        if top is ColumnType.STRING and below not in (None, ColumnType.STRING):
            header_votes += 1
        elif top not in (None, ColumnType.STRING) and join(top, below) is not ColumnType.STRING:
            data_votes += 1
    if header_votes:
        return True
    if data_votes:
        return False
    cells = [cell.strip() for cell in first]
    return all(cells) and len(set(cells)) == len(cells)


def _column_type(cells: list[str], nulls: frozenset[str]) -> ColumnType | None:
    values = [cell for cell in cells if cell not in nulls]
    if not values:
        return None
    return infer_block(pa.array(values, pa.string()), None)


def _check_delimiter(delimiter: str) -> None:
    if len(delimiter) != 1 or delimiter in '"\r\n':
        raise IngestFailed(
            f"invalid delimiter {delimiter!r}: use one character other than a quote or line break"
        )


def _records(text: str, delimiter: str, *, complete: bool) -> list[list[str]]:
    """Up to SNIFF_RECORDS non-empty records; the last one is dropped if the sample cut it."""
    # The default limit (128 KiB per field) is below the sample size; only ever raised, so
    # other users of the csv module just become more permissive.
    csv.field_size_limit(max(csv.field_size_limit(), _FIELD_LIMIT))
    reader = csv.reader(
        io.StringIO(text, newline=""),
        delimiter=delimiter,
        quotechar='"',
        doublequote=True,
        strict=False,
    )
    records: list[list[str]] = []
    try:
        for record in reader:
            if record:
                records.append(record)
                if len(records) > SNIFF_RECORDS:  # so the last one kept is surely whole
                    return records[:SNIFF_RECORDS]
    except csv.Error:  # e.g. a NUL character: judge by the records before it
        complete = False
    if not complete and len(records) > 1:
        records.pop()
    return records


def _pick_delimiter(text: str, *, complete: bool) -> tuple[str, list[list[str]]]:
    """The delimiter whose field count is the most consistent across records, then the largest.

    A delimiter that never splits a record (one field everywhere) only wins when nothing else
    does: the file then has a single column.
    """
    best: tuple[float, int, int] | None = None
    chosen, chosen_records = DELIMITERS[0], _records(text, DELIMITERS[0], complete=complete)
    for rank, candidate in enumerate(DELIMITERS):
        records = chosen_records if rank == 0 else _records(text, candidate, complete=complete)
        if not records:
            continue
        counts = Counter(len(r) for r in records)
        width, frequency = counts.most_common(1)[0]
        if width < 2:
            continue
        score = (frequency / len(records), width, -rank)
        if best is None or score > best:
            best, chosen, chosen_records = score, candidate, records
    return chosen, chosen_records

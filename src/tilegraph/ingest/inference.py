"""Column type rules: which values conform to which type, and how they are converted.

Every rule looks at one value at a time, and the types form a lattice: INT64 < FLOAT64,
DATE < DATETIME, BOOL alone, and any other mix joins to STRING (which keeps the original text).
Every value that conforms to INT64 also conforms to FLOAT64, and likewise DATE to DATETIME, so a
column can be typed block by block: the join of the blocks' types is the narrowest type the whole
column conforms to, and converting any block to it succeeds. Each ``parse_*`` function is both
the test and the conversion (None when a value does not conform), so the two cannot disagree.

The rules look at the values that are not null; which cells are null (the empty cell and
tokens such as ``NA``, by default) was decided when the block was read (``nulls.py``), so a
``1, NA, 3`` column is a nullable INT64. A cell not read as null must fit the type as written:
with the empty cell kept (``nullValues: []``) a numeric column with an empty cell is STRING.

- INT64: ``-?digits`` within int64, no leading zeros (``007`` is a code, kept as text; this also
  refuses the ``0x1f`` hex pyarrow's cast would accept).
- FLOAT64: what pyarrow parses as a finite double (``1.5``, ``-.5``, ``1e3``, ``+2``), except
  leading zeros and integers too long for int64 (20+ digits, e.g. IDs), which would silently
  lose digits. ``nan``, ``inf`` and ``1e999`` are not numbers a user typed: they stay text
  (``nan`` and ``NaN`` are null tokens by default: they only get here when an import keeps them).
- BOOL: true/false/yes/no in any letter case. 0/1 columns are INT64.
- DATE: ``2024-01-31``, ``2024/1/31``, ``2024年1月31日`` (1- or 2-digit month and day).
- DATETIME: a DATE, or ``2024-01-31T12:34``/``2024-01-31 12:34`` with optional seconds,
  fraction (truncated to microseconds) and ``Z``/``±hh[:mm]`` offset (converted to UTC, stored
  naive), or ``2024/01/31 12:34[:56]``. An hour alone (``2024-01-31T12``) is accepted as ISO 8601.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tilegraph.domain.datasets import ColumnType

#: How each column type is stored in Parquet.
ARROW_TYPES: dict[ColumnType, pa.DataType] = {
    ColumnType.INT64: pa.int64(),
    ColumnType.FLOAT64: pa.float64(),
    ColumnType.BOOL: pa.bool_(),
    ColumnType.DATE: pa.date32(),
    ColumnType.DATETIME: pa.timestamp("us"),
    ColumnType.STRING: pa.string(),
}

_WIDER = {ColumnType.INT64: ColumnType.FLOAT64, ColumnType.DATE: ColumnType.DATETIME}
# The order in which a block's type is searched: narrowest first within each chain.
_CANDIDATES = (
    ColumnType.INT64,
    ColumnType.FLOAT64,
    ColumnType.BOOL,
    ColumnType.DATE,
    ColumnType.DATETIME,
)

_LONG_INTEGER = r"^[+-]?[0-9]{20,}$"
_ZERO, _NINE, _MINUS, _PLUS = (ord(c) for c in "09-+")
_DATE_STRICT = (
    r"^(?:[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}|[0-9]{4}/[0-9]{1,2}/[0-9]{1,2}"
    r"|[0-9]{4}年[0-9]{1,2}月[0-9]{1,2}日)$"
)
_TIME = r"[0-9]{1,2}(?::[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,9})?)?)?"
_DATETIME_STRICT = (
    r"^(?:[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[T ]" + _TIME + r"(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?)?)?"
    r"|[0-9]{4}/[0-9]{1,2}/[0-9]{1,2}(?: " + _TIME + r")?"
    r"|[0-9]{4}年[0-9]{1,2}月[0-9]{1,2}日)$"
)
# Loose on purpose: only applied to values the strict pattern above accepted.
_DATETIME_PARTS = (
    r"^(?P<y>[0-9]{4})[-/年](?P<mo>[0-9]{1,2})[-/月](?P<d>[0-9]{1,2})日?"
    r"(?:[T ](?P<h>[0-9]{1,2})(?::(?P<mi>[0-9]{2})(?::(?P<s>[0-9]{2})(?:\.(?P<f>[0-9]{1,9}))?)?)?"
    r"(?P<zs>[-+Z]?)(?P<zh>[0-9]{0,2}):?(?P<zm>[0-9]{0,2}))?$"
)

Parser = Callable[[pa.Array], pa.Array | None]


def join(a: ColumnType | None, b: ColumnType | None) -> ColumnType | None:
    """The narrowest type both a and b values conform to (None means "no values yet")."""
    if a is None:
        return b
    if b is None or a == b:
        return a
    if _WIDER.get(a) == b:
        return b
    if _WIDER.get(b) == a:
        return a
    return ColumnType.STRING


def parse_int(arr: pa.Array) -> pa.Array | None:
    """int64 values, or None if any non-null value is not an INT64 literal."""
    try:
        out = pc.cast(arr, pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    # The cast accepts only "-"? digits, or 0x-hex: refuse "0" followed by anything.
    return None if _any_leading_zero(arr, digit_follows=False) else out


def parse_float(arr: pa.Array) -> pa.Array | None:
    """float64 values, or None if any non-null value is not a FLOAT64 literal."""
    try:
        out = pc.cast(arr, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    # Only words (nan, inf) and overflow give non-finite values; checked on the numbers.
    if _count_true(pc.is_finite(out)) != len(arr) - arr.null_count:
        return None
    if _any_leading_zero(arr, digit_follows=True):
        return None
    long = pc.greater_equal(pc.binary_length(arr), 20)
    if _any_true(long) and _any_match(arr.filter(long), _LONG_INTEGER):
        return None
    return out


def parse_bool(arr: pa.Array) -> pa.Array | None:
    """bool values, or None if any non-null value is not true/false/yes/no."""
    lower = pc.ascii_lower(arr)
    values = len(arr) - arr.null_count
    true = pc.equal(lower, "true")
    false = pc.equal(lower, "false")
    if _count_true(true) + _count_true(false) != values:
        true = pc.or_(true, pc.equal(lower, "yes"))
        false = pc.or_(false, pc.equal(lower, "no"))
        if _count_true(true) + _count_true(false) != values:
            return None
    return true  # null where the field was empty: equal() keeps nulls


def parse_date(arr: pa.Array) -> pa.Array | None:
    """date32 values, or None if any non-null value is not a valid DATE."""
    try:
        return pc.cast(arr, pa.date32())  # the common case: all YYYY-MM-DD
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    if not _all_match(arr, _DATE_STRICT):
        return None
    parts = pc.extract_regex(arr, _DATETIME_PARTS)
    try:
        return pc.cast(_iso_date(parts), pa.date32())
    except pa.ArrowInvalid:  # e.g. 2023/2/29
        return None


def parse_datetime(arr: pa.Array) -> pa.Array | None:
    """timestamp[us] values (UTC, naive), or None if any non-null value is not a DATETIME."""
    try:
        return pc.cast(arr, pa.timestamp("us"))  # the common case: naive ISO 8601
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    if not _all_match(arr, _DATETIME_STRICT):
        return None
    parts = pc.extract_regex(arr, _DATETIME_PARTS)
    time = pc.binary_join_element_wise(
        *(
            pc.utf8_lpad(pc.struct_field(parts, name), width=2, padding="0")
            for name in ("h", "mi", "s")
        ),
        ":",
    )
    fraction = pc.utf8_rpad(
        pc.utf8_slice_codeunits(pc.struct_field(parts, "f"), 0, 6), width=6, padding="0"
    )
    iso = pc.binary_join_element_wise(
        pc.binary_join_element_wise(_iso_date(parts), time, "T"), fraction, "."
    )
    try:
        local = pc.cast(iso, pa.timestamp("us"))
    except pa.ArrowInvalid:  # e.g. 25:00 or February 30th
        return None
    sign = pc.struct_field(parts, "zs")
    if not _any_true(pc.match_substring_regex(sign, r"^[-+]$")):
        return local
    offset_minutes = pc.add(
        pc.multiply(_int_or_zero(pc.struct_field(parts, "zh")), 60),
        _int_or_zero(pc.struct_field(parts, "zm")),
    )
    signed = pc.if_else(pc.equal(sign, "-"), pc.negate(offset_minutes), offset_minutes)
    utc = pc.subtract(pc.cast(local, pa.int64()), pc.multiply(signed, 60_000_000))
    return pc.cast(utc, pa.timestamp("us"))


def parse_string(arr: pa.Array) -> pa.Array:
    """STRING keeps the text exactly as it was in the file."""
    return arr


PARSERS: dict[ColumnType, Parser] = {
    ColumnType.INT64: parse_int,
    ColumnType.FLOAT64: parse_float,
    ColumnType.BOOL: parse_bool,
    ColumnType.DATE: parse_date,
    ColumnType.DATETIME: parse_datetime,
    ColumnType.STRING: parse_string,
}


def infer_block(arr: pa.Array, state: ColumnType | None) -> ColumnType | None:
    """The narrowest type at least as wide as ``state`` that every value of ``arr`` fits.

    ``state`` is what the earlier blocks of the column need (None: only nulls so far).
    """
    return infer_and_convert(arr, state)[0]


def infer_and_convert(
    arr: pa.Array, state: ColumnType | None
) -> tuple[ColumnType | None, pa.Array | None]:
    """``infer_block``, plus the block converted to that type (None if it is all null).

    The first value picks which candidate types are worth a full pass over the block: a type
    it does not fit cannot be the block's type.
    """
    if state is ColumnType.STRING:
        return state, arr
    if arr.null_count == len(arr):
        return state, None
    first = arr.drop_null().slice(0, 1) if arr.null_count else arr.slice(0, 1)
    for candidate in _CANDIDATES:
        if join(state, candidate) != candidate:
            continue
        parse = PARSERS[candidate]
        if parse(first) is None:
            continue
        converted = parse(arr)
        if converted is not None:
            return candidate, converted
    return ColumnType.STRING, arr


class TypeTracker:
    """The running type and nullability of every column while the blocks of a file go by."""

    def __init__(self, column_count: int) -> None:
        self.states: list[ColumnType | None] = [None] * column_count
        self.has_null = [False] * column_count

    def observe(self, batch: pa.RecordBatch) -> list[tuple[ColumnType | None, pa.Array | None]]:
        """Fold one block of raw string columns into the column types.

        Returns each column of the block converted to the type it was found to have, so a
        caller that ends up wanting that type need not convert again.
        """
        converted = []
        for i, arr in enumerate(batch.columns):
            self.has_null[i] = self.has_null[i] or arr.null_count > 0
            block_type, values = infer_and_convert(arr, self.states[i])
            self.states[i] = join(self.states[i], block_type)
            converted.append((block_type, values))
        return converted

    def types(self) -> list[ColumnType]:
        """The column types so far; a column with no values at all is STRING."""
        return [state or ColumnType.STRING for state in self.states]

    def convert(self, batch: pa.RecordBatch, types: Sequence[ColumnType]) -> list[pa.Array] | None:
        """Convert one block to ``types`` while observing it.

        Returns None when some column does not fit its type (the tracker then knows the wider
        type it needs): whatever was converted with ``types`` so far must be redone.
        """
        out: list[pa.Array] = []
        fits = True
        for i, (arr, wanted) in enumerate(zip(batch.columns, types, strict=True)):
            self.has_null[i] = self.has_null[i] or arr.null_count > 0
            if wanted is ColumnType.STRING:
                out.append(arr)
                if self.states[i] is not ColumnType.STRING:
                    # Nothing was seen when STRING was picked; values may still say otherwise.
                    self.states[i] = infer_block(arr, self.states[i])
                    fits = fits and self.states[i] in (None, ColumnType.STRING)
                continue
            converted = PARSERS[wanted](arr) if fits else None
            if converted is None:
                self.states[i] = infer_block(arr, self.states[i])
                fits = fits and self.states[i] == wanted
            else:
                out.append(converted)
        return out if fits else None


def _iso_date(parts: pa.Array) -> pa.Array:
    return pc.binary_join_element_wise(
        pc.struct_field(parts, "y"),
        pc.utf8_lpad(pc.struct_field(parts, "mo"), width=2, padding="0"),
        pc.utf8_lpad(pc.struct_field(parts, "d"), width=2, padding="0"),
        "-",
    )


def _int_or_zero(digits: pa.Array) -> pa.Array:
    return pc.cast(pc.if_else(pc.equal(digits, ""), "0", digits), pa.int64())


def _count_true(mask: pa.Array) -> int:
    return int(pc.sum(mask).as_py() or 0)


def _any_true(mask: pa.Array) -> bool:
    return bool(pc.any(mask).as_py())


def _any_leading_zero(arr: pa.Array, *, digit_follows: bool) -> bool:
    """Whether a value is ``[+-]?0`` followed by a digit (or by anything: ``digit_follows``).

    Looked up on the first bytes of each value with numpy: a regex over every value of a
    numeric column cost more than the number parsing itself.
    """
    if len(arr) == 0 or arr.buffers()[2] is None:
        return False
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)
    offsets = offsets[arr.offset : arr.offset + len(arr) + 1]
    data = np.frombuffer(arr.buffers()[2], dtype=np.uint8)
    lengths = np.diff(offsets)
    rows = np.flatnonzero(lengths >= 2)  # "0" and "-0" alone are fine
    first = data[offsets[rows]]
    suspect = (first == _ZERO) | (first == _MINUS) | (first == _PLUS)
    rows, first = rows[suspect], first[suspect]
    if rows.size == 0:
        return False
    starts, lengths = offsets[rows], lengths[rows]
    signed = first != _ZERO
    # Only signed values of length >= 3 have a byte after the zero; others read a safe index.
    lead = np.where(signed, data[starts + 1], _ZERO)
    bad = (lead == _ZERO) & ((lengths >= 3) | ~signed)
    if digit_follows:
        after = data[np.where(signed & (lengths >= 3), starts + 2, starts + 1)]
        bad &= (after >= _ZERO) & (after <= _NINE)
    if arr.null_count and bad.any():
        bad &= np.asarray(arr.is_valid(), dtype=bool)[rows]
    return bool(bad.any())


def _any_match(arr: pa.Array, pattern: str) -> bool:
    return _any_true(pc.match_substring_regex(arr, pattern))


def _all_match(arr: pa.Array, pattern: str) -> bool:
    nulls: int = arr.null_count
    return _count_true(pc.match_substring_regex(arr, pattern)) == len(arr) - nulls

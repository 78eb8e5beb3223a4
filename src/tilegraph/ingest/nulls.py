"""Which cells are null: the empty cell and the tokens an import names (``NA``, ``NULL`` …).

Marked on the raw text columns of each block, before typing, so every rule downstream
(inference, conversion, nullability) sees a token as a missing value: ``1, NA, 3`` is a
nullable INT64. Done with numpy on the value offsets: a cell can only be a token if its length
and its first byte are those of some token, two table lookups that rule out nearly every cell
of a numeric or free-text column; the few candidates left are compared in one ``is_in`` (a
hash lookup each). pyarrow's own ``null_values`` option compares every cell against the list
and cost a third of the parsing time.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


class NullCells:
    """Marks the cells equal to one of ``values`` (case and blanks matter) as null."""

    def __init__(self, values: Iterable[str]) -> None:
        encoded = {value.encode() for value in values}
        self.empty = b"" in encoded  # whether the empty cell is null
        tokens = sorted(encoded - {b""})
        self._tokens = pa.array([t.decode() for t in tokens], pa.string()) if tokens else None
        longest = max((len(t) for t in tokens), default=0)
        # Indexed by length, clipped: the last entry stands for "longer than any token".
        self._length_fits = np.zeros(longest + 2, dtype=bool)
        self._first_fits = np.zeros(256, dtype=bool)
        for token in tokens:
            self._length_fits[len(token)] = True
            self._first_fits[token[0]] = True

    def mark(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """The block of raw text columns (no nulls yet) with every null cell made null."""
        if not self.empty and self._tokens is None:
            return batch
        original = batch.columns
        columns = [self._mark_column(column) for column in original]
        if all(new is old for new, old in zip(columns, original, strict=True)):
            return batch
        return pa.RecordBatch.from_arrays(columns, schema=batch.schema)

    def _mark_column(self, column: pa.Array) -> pa.Array:
        offsets = np.frombuffer(column.buffers()[1], dtype=np.int32)
        offsets = offsets[column.offset : column.offset + len(column) + 1]
        lengths = np.diff(offsets)
        null = lengths == 0 if self.empty else np.zeros(len(column), dtype=bool)
        if self._tokens is not None:
            rows = np.flatnonzero(np.take(self._length_fits, lengths, mode="clip"))
            if rows.size:
                data = np.frombuffer(column.buffers()[2], dtype=np.uint8)
                rows = rows[self._first_fits[data[offsets[rows]]]]
            if rows.size:
                hits = pc.is_in(column.take(pa.array(rows)), value_set=self._tokens)
                null[rows[hits.to_numpy(zero_copy_only=False)]] = True
        count = int(np.count_nonzero(null))
        if count == 0:
            return column
        return pa.StringArray.from_buffers(
            len(column),
            pa.py_buffer(offsets),
            column.buffers()[2],
            pa.py_buffer(np.packbits(~null, bitorder="little")),
            count,
        )

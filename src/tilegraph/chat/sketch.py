"""Bounded-memory distinct counting for text columns that have too many values to count exactly.

`summary.py` counts text values exactly (an Arrow table of value → count) up to a limit; past
it, the distinct count switches to this HyperLogLog so that a column of a billion unique ids
costs 16 KiB instead of gigabytes. Hashing is vectorised over the Arrow buffers with numpy,
because a Python-level hash per value would dominate the summary time.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

HashArray = npt.NDArray[np.uint64]

# Polynomial hash base (odd, 64-bit) and splitmix64 constants.
_BASE = np.uint64(0x100000001B3)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
# Bytes hashed per numpy pass: bounds the temporaries (about 32 bytes per input byte).
_SLICE_BYTES = 1 << 18


def _splitmix64(x: HashArray) -> HashArray:
    """Finalizer that spreads the weak polynomial hash over all 64 bits (HyperLogLog needs it)."""
    with np.errstate(over="ignore"):
        x = x + _GOLDEN
        x = (x ^ (x >> np.uint64(30))) * _MIX1
        x = (x ^ (x >> np.uint64(27))) * _MIX2
        return x ^ (x >> np.uint64(31))


def hash_values(values: pa.Array | pa.ChunkedArray) -> HashArray:
    """64-bit hashes of the non-null values (any type, compared by their text form)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    values = values.drop_null()
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        values = pc.cast(values, pa.string())
    binary = pc.cast(values, pa.large_binary())
    n = len(binary)
    if n == 0:
        return np.zeros(0, dtype=np.uint64)
    offsets = np.frombuffer(
        binary.buffers()[1], dtype=np.int64, count=n + 1, offset=binary.offset * 8
    )
    data_buffer = binary.buffers()[2]
    data = (
        np.frombuffer(data_buffer, dtype=np.uint8)
        if data_buffer is not None
        else np.zeros(0, dtype=np.uint8)
    )
    lengths = np.diff(offsets)
    result = np.zeros(n, dtype=np.uint64)
    start = 0
    while start < n:
        # Take values until about _SLICE_BYTES bytes (at least one value).
        limit = offsets[start] + _SLICE_BYTES
        stop = max(start + 1, int(np.searchsorted(offsets, limit, side="right")) - 1)
        stop = min(stop, n)
        result[start:stop] = _polynomial_hash(data, offsets[start : stop + 1], lengths[start:stop])
        start = stop
    with np.errstate(over="ignore"):
        result ^= lengths.astype(np.uint64) * _GOLDEN
    return _splitmix64(result)


def _polynomial_hash(
    data: npt.NDArray[np.uint8], offsets: npt.NDArray[np.int64], lengths: npt.NDArray[np.int64]
) -> HashArray:
    """sum(byte[i] * BASE**i) mod 2**64 per value, with numpy only."""
    first, last = int(offsets[0]), int(offsets[-1])
    out = np.zeros(len(lengths), dtype=np.uint64)
    if last == first:
        return out
    starts = offsets[:-1] - first
    within = np.arange(last - first, dtype=np.int64) - np.repeat(starts, lengths)
    max_length = int(lengths.max())
    with np.errstate(over="ignore"):
        powers = np.cumprod(np.full(max_length, _BASE, dtype=np.uint64))
        powers = np.concatenate([np.ones(1, dtype=np.uint64), powers[:-1]])
        contributions = data[first:last].astype(np.uint64) * powers[within]
        nonempty = lengths > 0
        # reduceat sums each [start, next start) run; empty values are left at 0.
        out[nonempty] = np.add.reduceat(contributions, starts[nonempty])
    return out


class HyperLogLog:
    """HyperLogLog distinct-count estimator (2**precision one-byte registers).

    Precision 14 uses 16 KiB and has a standard error of about 0.8 %.
    """

    def __init__(self, precision: int = 14) -> None:
        if not 4 <= precision <= 18:
            raise ValueError("precision must be between 4 and 18")
        self.precision = precision
        self.registers = np.zeros(1 << precision, dtype=np.uint8)

    def add_hashes(self, hashes: HashArray) -> None:
        """Fold 64-bit hashes into the registers."""
        if len(hashes) == 0:
            return
        p = self.precision
        index = (hashes >> np.uint64(64 - p)).astype(np.int64)
        rest = (hashes << np.uint64(p)) | np.uint64((1 << p) - 1)  # sentinel bits bound the rank
        # rank = leading zeros of `rest` + 1, via the position of its highest set bit.
        highest = np.floor(np.log2(rest.astype(np.float64))).astype(np.int64)
        # float64 rounding can overshoot by one for values just below a power of two.
        highest = np.where((np.uint64(1) << highest.astype(np.uint64)) > rest, highest - 1, highest)
        rank = (64 - highest).astype(np.uint8)
        np.maximum.at(self.registers, index, rank)

    def add(self, values: pa.Array | pa.ChunkedArray) -> None:
        """Count the non-null values of an Arrow array."""
        self.add_hashes(hash_values(values))

    def estimate(self) -> int:
        """The estimated number of distinct values added so far."""
        m = float(len(self.registers))
        alpha = 0.7213 / (1.0 + 1.079 / m)
        raw = alpha * m * m / float(np.sum(np.exp2(-self.registers.astype(np.float64))))
        zeros = int(np.count_nonzero(self.registers == 0))
        if raw <= 2.5 * m and zeros:
            return round(m * math.log(m / zeros))  # linear counting for small cardinalities
        return round(raw)

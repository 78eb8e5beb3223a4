from __future__ import annotations

import pyarrow as pa
import pytest

from tilegraph.chat.sketch import HyperLogLog, hash_values


def test_hashes_are_stable_across_arrays_slices_and_types() -> None:
    words = ["", "a", "ab", "ba", "東京", "x" * 5000]
    first = hash_values(pa.array(words))
    padded = pa.array(["pad", *words, None]).slice(1, len(words))  # non-zero offset
    assert first.tolist() == hash_values(padded).tolist()
    assert first.tolist() == hash_values(pa.array(words, pa.large_string())).tolist()
    assert len(set(first.tolist())) == len(words)


def test_hashes_skip_nulls_and_do_not_collide() -> None:
    values = pa.array([f"user-{i}" for i in range(200_000)] + [None])
    hashes = hash_values(values)
    assert len(hashes) == 200_000
    assert len(set(hashes.tolist())) == 200_000


@pytest.mark.parametrize("n", [0, 1, 50, 5_000, 150_000])
def test_hyperloglog_estimates_distinct_counts(n: int) -> None:
    sketch = HyperLogLog()
    values = pa.array([f"v{i}" for i in range(n)])
    sketch.add(values)
    sketch.add(values.slice(0, n // 2))  # repeats do not count twice
    assert sketch.estimate() == pytest.approx(n, rel=0.03, abs=1)

"""Benchmark: ``tilegraph.ingest.ingest_csv`` against a naive CSV → Parquet pipeline.

The naive pipeline is what the original product did: detect the encoding on the whole file
(charset-normalizer by default; ``--baseline chardet`` for chardet, a bench-only dependency:
``.venv/bin/pip install chardet``), ``pandas.read_csv``, then ``DataFrame.to_parquet``.
Each pipeline runs in a freshly spawned process so its peak RSS (VmHWM) is its own; times
are measured inside the child, excluding interpreter start-up and imports. Ours also runs on
a file half the size, to show that peak memory does not grow with the file.

    .venv/bin/python bench/bench_ingest.py --size-mb 200 [--baseline chardet]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import statistics
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHUNK_ROWS = 250_000
WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "東京", "大阪", "Zoë")


def transcode(source: Path, target: Path, encoding: str) -> None:
    """Re-encode a UTF-8 file in 8 MB pieces cut at line ends (unmappable characters: "?")."""
    with source.open("rb") as src, target.open("wb") as dst:
        carry = b""
        while chunk := src.read(8 << 20):
            data = carry + chunk
            cut = data.rfind(b"\n") + 1
            carry = data[cut:]
            dst.write(data[:cut].decode("utf-8").encode(encoding, errors="replace"))
        dst.write(carry.decode("utf-8").encode(encoding, errors="replace"))


def _peak_rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _current_rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _run_ours(csv_path: str, out_dir: str) -> dict[str, Any]:
    # pyarrow imports pandas lazily the first time it converts a Python value; a worker
    # process pays that once, not per import job, so it is paid here before timing.
    import pandas  # noqa: F401

    from tilegraph.ingest import IngestOptions, ingest_csv

    base = _current_rss_mb()
    start = time.perf_counter()
    result = ingest_csv(Path(csv_path), Path(out_dir), IngestOptions())
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "rows": result.row_count,
        "base_mb": base,
        "encoding": result.encoding,
    }


def _run_naive(csv_path: str, out_dir: str, baseline: str = "charset-normalizer") -> dict[str, Any]:
    import inspect

    import pandas as pd

    if baseline == "chardet":
        import chardet

        # chardet >= 7 examines only ``max_bytes`` (200 kB by default): ask for the whole file.
        whole = "max_bytes" in inspect.signature(chardet.detect).parameters

        def detect(data: bytes) -> str:
            found = chardet.detect(data, max_bytes=len(data)) if whole else chardet.detect(data)
            return str(found["encoding"])

        detector = f"chardet {chardet.__version__}"
    else:
        import charset_normalizer

        def detect(data: bytes) -> str:
            best = charset_normalizer.from_bytes(data).best()
            return best.encoding if best is not None else "utf-8"

        detector = "charset-normalizer"
    base = _current_rss_mb()
    start = time.perf_counter()
    data = Path(csv_path).read_bytes()
    encoding = detect(data)
    del data
    frame = pd.read_csv(csv_path, encoding=encoding)
    frame.to_parquet(Path(out_dir) / "naive.parquet")
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "rows": len(frame),
        "base_mb": base,
        "encoding": f"{encoding} ({detector})",
    }


def _child(target: str, csv_path: str, out_dir: str, conn: Connection, baseline: str) -> None:
    if target == "ours":
        result = _run_ours(csv_path, out_dir)
    else:
        result = _run_naive(csv_path, out_dir, baseline)
    result["peak_mb"] = _peak_rss_mb()
    conn.send(result)
    conn.close()


def run_isolated(
    target: str, csv_path: Path, out_dir: Path, baseline: str = "charset-normalizer"
) -> dict[str, Any]:
    """Run one pipeline in a fresh spawned process and return its figures."""
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(target, str(csv_path), str(out_dir), child, baseline))
    proc.start()
    child.close()
    try:
        result: dict[str, Any] = parent.recv()
    except EOFError:
        result = {}
    proc.join()
    if proc.exitcode != 0 or not result:
        raise RuntimeError(f"{target} failed with exit code {proc.exitcode}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=200, help="size of the CSV (MiB)")
    parser.add_argument("--out", type=Path, default=None, help="work dir (default: a temp dir)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each pipeline")
    parser.add_argument(
        "--encoding", default="utf-8", help="encoding of the generated CSV (e.g. cp932)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument(
        "--baseline",
        choices=["charset-normalizer", "chardet"],
        default="charset-normalizer",
        help="encoding detector of the naive pipeline (chardet: pip install chardet)",
    )
    args = parser.parse_args()
    work = args.out or Path(tempfile.mkdtemp(prefix="bench_ingest_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        _bench(work, args.size_mb, args.repeat, args.encoding, args.baseline)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def _bench(
    work: Path, size_mb: int, repeat: int, encoding: str, baseline: str = "charset-normalizer"
) -> None:
    # Imported here, not at the top: each pipeline runs in a spawned process that re-imports
    # this script, and its peak RSS should not include the helpers' modules.
    from common import generate_csv

    files = {}
    for label, mb in (("full", size_mb), ("half", max(size_mb // 2, 1))):
        path = work / f"bench_{mb}mb_{encoding}.csv"
        start = time.perf_counter()
        rows = generate_csv(path, mb, seed=7, block_rows=CHUNK_ROWS, words=WORDS)
        if encoding.replace("_", "-").lower() not in ("utf-8", "utf8"):
            utf8 = path.rename(path.with_suffix(".utf8"))
            transcode(utf8, path, encoding)
            utf8.unlink()
        files[label] = path
        print(
            f"generated {path.name}: {path.stat().st_size / 1e6:,.1f} MB, {rows:,} rows "
            f"in {time.perf_counter() - start:.1f} s"
        )

    load_before = os.getloadavg()[0]
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    # Interleaved, so a burst of load on this shared machine hits both pipelines alike.
    for _ in range(max(repeat, 1)):
        for name, label in (("ours", "full"), ("naive", "full"), ("ours", "half")):
            result = run_isolated(name, files[label], work / f"{name}_{label}", baseline)
            runs.setdefault((name, label), []).append(result)
    load_after = os.getloadavg()[0]

    print(
        f"\n{os.cpu_count()} cores, load average {load_before:.2f} -> {load_after:.2f}; "
        f"each run in a fresh process, {repeat} runs each, interleaved; times exclude imports\n"
    )
    header = (
        f"{'pipeline':<33} {'file MB':>7} {'rows':>10} {'best s':>7} {'median s':>8} "
        f"{'MB/s':>6} {'peak RSS MB':>11} {'over base':>9}"
    )
    print(header)
    print("-" * len(header))
    best: dict[tuple[str, str], float] = {}
    peak: dict[tuple[str, str], float] = {}
    for (name, label), results in runs.items():
        size = files[label].stat().st_size / 1e6
        times = sorted(r["seconds"] for r in results)
        best[name, label] = times[0]
        peak[name, label] = max(r["peak_mb"] for r in results)
        over = max(r["peak_mb"] - r["base_mb"] for r in results)
        title = "tilegraph.ingest" if name == "ours" else "naive: detect+read_csv+to_parquet"
        print(
            f"{title:<33} {size:>7.1f} {results[0]['rows']:>10,} {times[0]:>7.2f} "
            f"{statistics.median(times):>8.2f} {size / times[0]:>6.1f} "
            f"{peak[name, label]:>11.0f} {over:>9.0f}"
        )
    ours, naive = runs["ours", "full"][0], runs["naive", "full"][0]
    print(f"\nencodings: ours {ours['encoding']}, naive {naive['encoding']}")
    print(
        f"speed-up vs naive (best of {repeat}): {best['naive', 'full'] / best['ours', 'full']:.2f}x"
    )
    half_mb = files["half"].stat().st_size / 1e6
    full_mb = files["full"].stat().st_size / 1e6
    print(
        f"peak RSS ours: {peak['ours', 'half']:.0f} MB for {half_mb:.0f} MB of CSV -> "
        f"{peak['ours', 'full']:.0f} MB for {full_mb:.0f} MB "
        f"({peak['ours', 'full'] / peak['ours', 'half']:.2f}x for "
        f"{full_mb / half_mb:.2f}x the data)"
    )


if __name__ == "__main__":
    main()

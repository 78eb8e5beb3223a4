"""Dataset import through the product (GraphQL multipart upload, then the worker's import,
followed over ``Subscription.datasetImport``) beside the naive pipeline it replaced (chardet on
the whole file, ``pandas.read_csv``, ``DataFrame.to_parquet``), in the same run.

For each measured import a fresh worker is started, so its peak RSS (VmHWM of the worker
process itself; the sandbox zygote it starts is a separate process and is not counted) belongs
to that import alone. The import is also measured on a file half the size, to show that the
worker's peak memory does not grow with the file. The naive pipeline runs in a fresh
subprocess; its times exclude interpreter start-up and imports.

    .venv/bin/python bench/bench_import.py [--size-mb 200] [--repeat 3]

chardet is a bench-only dependency (``.venv/bin/pip install chardet``); without it the naive
pipeline falls back to charset-normalizer and says so.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHUNK_ROWS = 100_000
PROBE_BYTES = 8 << 20  # chardet is first timed on this prefix to decide whether to extrapolate
WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "東京", "München", "Zoë")

UPLOAD = """mutation($input: UploadDatasetInput!) { uploadDataset(input: $input) {
  dataset { id name } import { id status queuedAt } } }"""
FOLLOW = """subscription($id: ID!) { datasetImport(id: $id) {
  id status progress rowsProcessed bytesProcessed queuedAt startedAt finishedAt
  error { code message line } dataset { id version rowCount columnCount } } }"""


# --------------------------------------------------------------------------- the data


def block_rows(size_mb: int) -> int:
    """Rows per generated block: ~95 bytes a row, at most ``CHUNK_ROWS``."""
    return min(CHUNK_ROWS, max(10_000, size_mb * 2_000))


# --------------------------------------------------------------------------- helpers


def vm_kb(pid: int | str, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} missing from /proc/{pid}/status")


def seconds_between(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


# --------------------------------------------------------------------------- naive child


def naive_child(csv_path: str, out_dir: str, chardet_limit: float) -> None:
    """The naive pipeline, run as ``bench_import.py --naive-child``; prints one JSON line."""
    import pandas as pd

    try:
        import chardet

        detector = f"chardet {chardet.__version__}"
        # chardet >= 7 examines only max_bytes (200 kB by default): ask for the whole input.
        whole = "max_bytes" in inspect.signature(chardet.detect).parameters

        def detect(data: bytes) -> str:
            found = chardet.detect(data, max_bytes=len(data)) if whole else chardet.detect(data)
            return str(found["encoding"] or "utf-8")

    except ImportError:
        import charset_normalizer

        detector = f"charset-normalizer {charset_normalizer.__version__} (chardet missing)"

        def detect(data: bytes) -> str:
            best = charset_normalizer.from_bytes(data).best()
            return best.encoding if best is not None else "utf-8"

    base_kb = vm_kb("self", "VmRSS")
    start = time.perf_counter()
    data = Path(csv_path).read_bytes()
    read_s = time.perf_counter() - start
    probe = data[:PROBE_BYTES]
    started = time.perf_counter()
    detect(probe)  # also loads chardet's models, so the whole-file run below is not charged
    estimate = (time.perf_counter() - started) * len(data) / len(probe)
    if estimate > chardet_limit:
        encoding = detect(probe)
        detect_s, detect_how = estimate, f"EXTRAPOLATED from {len(probe) >> 20} MiB prefix"
    else:
        started = time.perf_counter()
        encoding = detect(data)
        detect_s, detect_how = time.perf_counter() - started, "whole file"
    del data, probe
    started = time.perf_counter()
    frame = pd.read_csv(csv_path, encoding=encoding)
    read_csv_s = time.perf_counter() - started
    started = time.perf_counter()
    frame.to_parquet(Path(out_dir) / "naive.parquet")
    to_parquet_s = time.perf_counter() - started
    result = {
        "read_s": read_s,
        "detect_s": detect_s,
        "detect_how": detect_how,
        "read_csv_s": read_csv_s,
        "to_parquet_s": to_parquet_s,
        "seconds": read_s + detect_s + read_csv_s + to_parquet_s,
        "rows": len(frame),
        "encoding": encoding,
        "detector": detector,
        "base_mb": base_kb / 1024,
        "peak_mb": vm_kb("self", "VmHWM") / 1024,
    }
    print(json.dumps(result))


def run_naive(csv_path: Path, work: Path, chardet_limit: float) -> dict[str, Any]:
    out_dir = work / "naive_out"
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    done = subprocess.run(
        [
            sys.executable,
            __file__,
            "--naive-child",
            str(csv_path),
            str(out_dir),
            "--chardet-limit-s",
            str(chardet_limit),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    shutil.rmtree(out_dir, ignore_errors=True)
    if done.returncode != 0:
        raise RuntimeError(f"naive pipeline failed ({done.returncode}):\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- the product


async def upload_and_follow(api: Any, token: str, path: Path, name: str) -> dict[str, Any]:
    """Upload over GraphQL multipart, follow the import until it ends; client-side times."""
    async with api.websocket({"authorization": f"Bearer {token}"}) as session:
        ack = await session.receive()
        assert ack["type"] == "connection_ack", ack
        variables = {"input": {"name": name, "file": None}}
        with path.open("rb") as handle:
            started = time.perf_counter()
            response = await api.http.post(
                "/graphql",
                data={
                    "operations": json.dumps({"query": UPLOAD, "variables": variables}),
                    "map": json.dumps({"0": ["variables.input.file"]}),
                },
                files={"0": (path.name, handle, "text/csv")},
                headers={"Authorization": f"Bearer {token}"},
                timeout=1800,
            )
            uploaded_at = time.perf_counter()
        body = response.json()
        if body.get("errors"):
            raise RuntimeError(f"upload failed: {body['errors']}")
        import_id = body["data"]["uploadDataset"]["import"]["id"]
        op = await session.subscribe(FOLLOW, {"id": import_id})
        seen_running: float | None = None
        finished_at = 0.0
        final: dict[str, Any] = {}
        async for payload in session.messages(op, timeout=1800):
            if not payload.get("data"):
                raise RuntimeError(f"subscription error: {payload}")
            state = payload["data"]["datasetImport"]
            if state["status"] == "RUNNING" and seen_running is None:
                seen_running = time.perf_counter()
            if state["status"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
                final = state
                finished_at = time.perf_counter()
                break
    if final.get("status") != "SUCCEEDED":
        raise RuntimeError(f"import ended {final}")
    return {
        "total_s": finished_at - started,
        "upload_s": uploaded_at - started,
        "after_upload_s": finished_at - uploaded_at,
        "running_seen_s": None if seen_running is None else finished_at - seen_running,
        "import_s": seconds_between(final["startedAt"], final["finishedAt"]),
        "queue_s": seconds_between(final["queuedAt"], final["startedAt"]),
        "rows": final["dataset"]["rowCount"],
        "columns": final["dataset"]["columnCount"],
    }


def measured_import(
    stack: Any, api_server: Any, path: Path, name: str, warm: Path
) -> dict[str, Any]:
    """One import with a fresh worker, and that worker's peak RSS.

    The worker first imports a ~2 MB file, unmeasured, so the figures are those of a
    long-running worker rather than of its first job (lazy imports, S3 clients); its peak
    RSS is far below the measured import's, so VmHWM still belongs to the measured import."""
    from tests.support.client import Api

    from common import ADMIN, PRODUCTION
    from tilegraph.local.processes import stop_process

    worker = stack.start_worker(name=f"worker-{name}", env=PRODUCTION)
    try:
        idle_kb = vm_kb(worker.pid, "VmHWM")
        warmed_kb = 0

        async def go() -> dict[str, Any]:
            nonlocal warmed_kb
            api = Api(api_server.url, api_server.ws_url)
            try:
                token = await api.login(*ADMIN)
                first = await upload_and_follow(api, token, warm, f"{name}-warm")
                warmed_kb = vm_kb(worker.pid, "VmHWM")
                result = await upload_and_follow(api, token, path, name)
                result["first_import_s"] = first["import_s"]
                return result
            finally:
                await api.close()

        result = asyncio.run(go())
        result["peak_mb"] = vm_kb(worker.pid, "VmHWM") / 1024
        result["idle_mb"] = idle_kb / 1024
        result["warmed_mb"] = warmed_kb / 1024
    finally:
        stop_process(worker, timeout=15)
    return result


# --------------------------------------------------------------------------- report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=200, help="size of the CSV (MiB)")
    parser.add_argument("--repeat", type=int, default=3, help="measured runs of each")
    parser.add_argument("--out", type=Path, default=None, help="work dir (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the work dir")
    parser.add_argument("--no-naive", action="store_true", help="skip the naive pipeline")
    parser.add_argument(
        "--chardet-limit-s",
        type=float,
        default=600,
        help="extrapolate chardet from a prefix when the whole file would take longer",
    )
    parser.add_argument("--naive-child", nargs=2, metavar=("CSV", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.naive_child:
        naive_child(args.naive_child[0], args.naive_child[1], args.chardet_limit_s)
        return
    work = args.out or Path(tempfile.mkdtemp(prefix="bench_import_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        bench(work, args)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def bench(work: Path, args: argparse.Namespace) -> None:
    from common import QUIET_API, admin_stack, generate_csv

    files: dict[str, Path] = {}
    rows: dict[str, int] = {}
    for label, mb in (("full", args.size_mb), ("half", max(args.size_mb // 2, 1)), ("warm", 1)):
        path = work / f"import_{mb}mb.csv"
        started = time.perf_counter()
        rows[label] = generate_csv(path, mb, seed=11, block_rows=block_rows(mb), words=WORDS)
        files[label] = path
        if label != "warm":
            print(
                f"generated {path.name}: {path.stat().st_size / 1e6:,.1f} MB, "
                f"{rows[label]:,} rows x 9 columns in {time.perf_counter() - started:.1f} s",
                flush=True,
            )

    load_before = os.getloadavg()
    ours: dict[str, list[dict[str, Any]]] = {"full": [], "half": []}
    naive: list[dict[str, Any]] = []
    with admin_stack(work) as stack:
        api_server = stack.start_api(env=QUIET_API)
        measured_import(stack, api_server, files["warm"], "warm-up", files["warm"])  # the API
        for n in range(max(args.repeat, 1)):
            # Interleaved, so a burst of load on this shared machine hits every pipeline.
            for label in ("full", "half"):
                result = measured_import(
                    stack, api_server, files[label], f"{label}-{n}", files["warm"]
                )
                if result["rows"] != rows[label]:
                    raise RuntimeError(f"imported {result['rows']} rows of {rows[label]}")
                ours[label].append(result)
                print(
                    f"  run {n + 1} ours {label}: total {result['total_s']:.1f} s, "
                    f"import {result['import_s']:.1f} s, peak {result['peak_mb']:.0f} MB",
                    flush=True,
                )
                if label == "full" and not args.no_naive:
                    naive.append(run_naive(files["full"], work, args.chardet_limit_s))
                    print(
                        f"  run {n + 1} naive full: {naive[-1]['seconds']:.1f} s, "
                        f"peak {naive[-1]['peak_mb']:.0f} MB",
                        flush=True,
                    )
        api_peak = vm_kb(api_server.process.pid, "VmHWM") / 1024
        split = asyncio.run(phase_split(stack.env, files["full"], work, args.repeat))
    load_after = os.getloadavg()
    report(files, rows, ours, naive, api_peak, load_before, load_after, args.repeat)
    report_split(split, files["full"], naive)


async def phase_split(
    env: dict[str, str], csv: Path, work: Path, repeat: int
) -> list[dict[str, float]]:
    """The import's three steps timed apart, in this process, as the worker runs them: S3
    download from the emulator, ingest to Parquet, Parquet upload to the emulator."""
    from tilegraph.ingest import IngestOptions, ingest_csv
    from tilegraph.services.registry import Services
    from tilegraph.settings import Settings

    services = await Services.open(Settings.from_env(env))
    runs: list[dict[str, float]] = []
    try:
        await services.objects.upload_file(csv, "bench/split/source.csv")
        for n in range(max(repeat, 1)):
            local, out = work / f"split-{n}.csv", work / f"split-{n}"
            out.mkdir()
            started = time.perf_counter()
            await services.objects.download("bench/split/source.csv", local)
            downloaded = time.perf_counter()
            result = await asyncio.to_thread(
                ingest_csv, local, out, IngestOptions(block_size=8 << 20)
            )
            ingested = time.perf_counter()
            parquet = out / result.files[0]
            await services.objects.upload_file(parquet, f"bench/split/{n}.parquet")
            runs.append(
                {
                    "download_s": downloaded - started,
                    "ingest_s": ingested - downloaded,
                    "upload_s": time.perf_counter() - ingested,
                    "parquet_mb": parquet.stat().st_size / 1e6,
                }
            )
            shutil.rmtree(out)
            local.unlink()
    finally:
        await services.close()
    return runs


def report_split(split: list[dict[str, float]], csv: Path, naive: list[dict[str, Any]]) -> None:
    med = statistics.median
    ingest = med(r["ingest_s"] for r in split)
    line = (
        f"\nour import's steps apart (in this process, medians of {len(split)}): S3 download "
        f"{med(r['download_s'] for r in split):.2f} s, ingest {ingest:.2f} s "
        f"({csv.stat().st_size / 1e6 / ingest:.0f} MB/s), Parquet upload "
        f"({split[0]['parquet_mb']:.0f} MB) {med(r['upload_s'] for r in split):.2f} s"
    )
    if naive:
        line += (
            f"; naive time / our ingest alone = {med(r['seconds'] for r in naive) / ingest:.2f}x"
        )
    print(line)


def report(
    files: dict[str, Path],
    rows: dict[str, int],
    ours: dict[str, list[dict[str, Any]]],
    naive: list[dict[str, Any]],
    api_peak: float,
    load_before: tuple[float, float, float],
    load_after: tuple[float, float, float],
    repeat: int,
) -> None:
    size = {label: files[label].stat().st_size / 1e6 for label in files}
    med = statistics.median
    print(
        f"\n{os.cpu_count()} cores; load average {load_before[0]:.2f} -> {load_after[0]:.2f}; "
        f"{max(repeat, 1)} measured run(s) each: times are medians, peak RSS the highest run; "
        "a fresh worker per import (8 MiB ingest blocks); MB = 10^6 bytes\n"
    )
    header = (
        f"{'pipeline':<38}{'file MB':>8}{'rows':>11}{'total s':>9}{'upload s':>9}"
        f"{'import s':>9}{'MB/s':>7}{'peak RSS MB':>12}"
        # MB/s: file size / total s
    )
    print(header)
    print("-" * len(header))
    for label in ("full", "half"):
        runs = ours[label]
        total = med(r["total_s"] for r in runs)
        print(
            f"{'tilegraph upload + import (E2E)':<38}{size[label]:>8.1f}{rows[label]:>11,}"
            f"{total:>9.2f}{med(r['upload_s'] for r in runs):>9.2f}"
            f"{med(r['import_s'] for r in runs):>9.2f}{size[label] / total:>7.1f}"
            f"{max(r['peak_mb'] for r in runs):>12.0f}"
        )
    if naive:
        total = med(r["seconds"] for r in naive)
        print(
            f"{'naive chardet+read_csv+to_parquet':<38}{size['full']:>8.1f}{naive[0]['rows']:>11,}"
            f"{total:>9.2f}{'-':>9}{total:>9.2f}{size['full'] / total:>7.1f}"
            f"{max(r['peak_mb'] for r in naive):>12.0f}"
        )
    full, half = ours["full"], ours["half"]
    import_full = med(r["import_s"] for r in full)
    total_full = med(r["total_s"] for r in full)
    print(
        "\nours, full file: import alone (startedAt -> finishedAt: S3 download, ingest, Parquet "
        f"upload, publish) {import_full:.2f} s = {size['full'] / import_full:.1f} MB/s; "
        f"queue wait {med(r['queue_s'] for r in full):.2f} s; "
        f"mutation return -> SUCCEEDED seen {med(r['after_upload_s'] for r in full):.2f} s"
    )
    print(
        f"each fresh worker's VmHWM: {med(r['idle_mb'] for r in full):.0f} MB idle, "
        f"{med(r['warmed_mb'] for r in full):.0f} MB after its unmeasured "
        f"{size['warm']:.1f} MB first import "
        f"(which took {med(r['first_import_s'] for r in full + half):.2f} s); "
        f"API process VmHWM over the whole run: {api_peak:.0f} MB"
    )
    peak_full = max(r["peak_mb"] for r in full)
    peak_half = max(r["peak_mb"] for r in half)
    print(
        f"worker peak RSS: {peak_half:.0f} MB for {size['half']:.0f} MB of CSV -> "
        f"{peak_full:.0f} MB for {size['full']:.0f} MB "
        f"({peak_full / peak_half:.2f}x for {size['full'] / size['half']:.2f}x the data)"
    )
    if naive:
        n = naive[0]
        parts = ", ".join(
            f"{k} {med(r[k + '_s'] for r in naive):.2f} s"
            for k in ("read", "detect", "read_csv", "to_parquet")
        )
        print(f"\nnaive steps (median): {parts}")
        print(f"naive detector: {n['detector']}, {n['detect_how']}; encoding {n['encoding']!r}")
        naive_total = med(r["seconds"] for r in naive)
        print(
            f"speed ratio, naive time / our time (>1: ours faster): "
            f"{naive_total / import_full:.2f}x against our import alone, "
            f"{naive_total / total_full:.2f}x against our upload + import end to end"
        )
        print(
            f"peak RSS ratio naive / ours (full file): "
            f"{max(r['peak_mb'] for r in naive) / peak_full:.2f}x"
        )


if __name__ == "__main__":
    main()

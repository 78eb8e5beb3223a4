"""Rules 5 and 6 and the pipeline: failures, multi-line fields, passes, progress, cancel."""

from __future__ import annotations

import gzip
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tilegraph.ingest import (
    IngestCancelled,
    IngestFailed,
    IngestOptions,
    IngestProgress,
    ingest_csv,
    pipeline,
    scan_csv,
)
from tilegraph.ingest.source import SourceStream

from .helpers import column_types, ingest, published_files, read_back, write

PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000")


# -- rule 5: bad files --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad_row", "found"), [("7,8,9,10", 4), ("7,8", 2)], ids=["too-many", "too-few"]
)
def test_ragged_row_names_line_and_field_counts(
    tmp_path: Path, out_dir: Path, bad_row: str, found: int
) -> None:
    path = write(tmp_path / "r.csv", f"a,b,c\n1,2,3\n4,5,6\n{bad_row}\n10,11,12\n")
    with pytest.raises(IngestFailed) as caught:
        ingest(path, out_dir)
    assert caught.value.line == 4
    assert (
        caught.value.message == f"line 4: expected 3 fields (as in the first row) but found {found}"
    )
    assert published_files(out_dir) == []


def test_ragged_row_line_counts_blank_lines_and_multiline_values(
    tmp_path: Path, out_dir: Path
) -> None:
    # Editor lines: 1 header, 2-4 one record with two line breaks in a quoted value,
    # 5 blank, 6 good, 7 blank, 8 blank, 9 bad.
    text = 'id,note\n1,"first\nsecond\nthird"\n\n2,ok\n\n\n3,x,extra\n4,fine\n'
    with pytest.raises(IngestFailed) as caught:
        ingest(write(tmp_path / "r.csv", text), out_dir)
    assert caught.value.line == 9
    assert "expected 2 fields" in caught.value.message
    assert "found 3" in caught.value.message


def test_ragged_row_far_into_the_file(tmp_path: Path, out_dir: Path) -> None:
    rows = "".join(f"{i},row {i}\n" for i in range(50_000))
    path = write(tmp_path / "r.csv", f"n,s\n{rows}oops\n")
    with pytest.raises(IngestFailed) as caught:
        ingest(path, out_dir, block_size=64 << 10)
    assert caught.value.line == 50_002
    assert published_files(out_dir) == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "no data rows: the file is empty"),
        (b"a,b,c\n", "no data rows: the file has a header but no data"),
        (b"a,b,c\r\n\r\n\r\n", "no data rows: the file has a header but no data"),
        (b"\n\n\n", "no data rows: the file has no CSV records"),
    ],
    ids=["empty", "header-only", "header-and-blank-lines", "blank-lines"],
)
def test_no_data_rows(tmp_path: Path, out_dir: Path, content: bytes, message: str) -> None:
    with pytest.raises(IngestFailed) as caught:
        ingest(write(tmp_path / "e.csv", content), out_dir)
    assert caught.value.message == message
    assert caught.value.line is None
    assert published_files(out_dir) == []


@pytest.mark.parametrize(
    ("content", "what"),
    [
        (PNG + bytes(range(256)) * 4, "a PNG image"),
        (gzip.compress(b"a,b\n1,2\n" * 1000), "a gzip archive"),
        (b"a,b\n1,2\n" + b"\x00\x01\x02\x03" * 100, "NUL bytes"),
        (b"a,b\n" + bytes([1, 2, 3, 4, 5, 6, 7, 8, 14, 15]) * 50, "control characters"),
    ],
    ids=["png", "gzip", "nul", "control"],
)
def test_binary_files_are_refused(tmp_path: Path, out_dir: Path, content: bytes, what: str) -> None:
    with pytest.raises(IngestFailed) as caught:
        ingest(write(tmp_path / "b.csv", content), out_dir)
    assert caught.value.message.startswith("not a text CSV file")
    assert what in caught.value.message
    assert published_files(out_dir) == []


def test_binary_file_is_refused_even_with_a_forced_encoding(tmp_path: Path) -> None:
    with pytest.raises(IngestFailed, match="not a text CSV file"):
        scan_csv(write(tmp_path / "b.csv", PNG * 10), IngestOptions(encoding="latin-1"))


# -- rule 6: quoting ------------------------------------------------------------------------------


def test_multiline_quoted_fields_and_quoted_delimiters(tmp_path: Path, out_dir: Path) -> None:
    text = (
        "id,comment,amount\r\n"
        '1,"line one\r\nline two",10\r\n'
        '2,"has, commas; and ""quotes""",20\r\n'
        '3,"ends with newline\n",30\r\n'
        "4,plain,40\r\n"
    )
    result = ingest(write(tmp_path / "q.csv", text), out_dir)
    assert result.row_count == 4
    assert column_types(result) == {"id": "INT64", "comment": "STRING", "amount": "INT64"}
    table = read_back(out_dir, result)
    assert table.column("comment").to_pylist() == [
        "line one\r\nline two",
        'has, commas; and "quotes"',
        "ends with newline\n",
        "plain",
    ]
    assert table.column("amount").to_pylist() == [10, 20, 30, 40]


def test_multiline_header_cell(tmp_path: Path, out_dir: Path) -> None:
    result = ingest(write(tmp_path / "h.csv", '"total\namount",n\n1,2\n3,4\n'), out_dir)
    assert [c.name for c in result.columns] == ["total\namount", "n"]
    assert read_back(out_dir, result).column("n").to_pylist() == [2, 4]


# -- passes, blocks and memory ----------------------------------------------------------------------


def test_small_blocks_give_the_same_result(tmp_path: Path) -> None:
    rows = "".join(
        f'{i},"name {i}\nmore",{i / 4},{"true" if i % 2 else "no"}\n' for i in range(5_000)
    )
    path = write(tmp_path / "b.csv", "i,s,f,b\n" + rows)
    a = ingest_csv(path, tmp_path / "a", IngestOptions())
    b = ingest_csv(path, tmp_path / "b", IngestOptions(block_size=4 << 10))
    assert a.columns == b.columns
    assert read_back(tmp_path / "a", a).equals(read_back(tmp_path / "b", b))
    assert b.row_count == 5_000


def test_a_record_larger_than_a_block_is_read_with_larger_blocks(
    tmp_path: Path, out_dir: Path
) -> None:
    big = "x" * 50_000
    text = f'a,b\n1,"{big}"\n2,"{big}\nmore"\n3,short\n'
    result = ingest(write(tmp_path / "g.csv", text), out_dir, block_size=4 << 10)
    assert result.row_count == 3
    table = read_back(out_dir, result)
    assert table.column("b").to_pylist() == [big, big + "\nmore", "short"]
    assert table.column("a").to_pylist() == [1, 2, 3]


def test_type_change_after_the_warmup_takes_a_second_pass(
    tmp_path: Path, out_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline, "WARMUP_BYTES", 1)
    seconds: list[bool] = []
    original = pipeline._Progress.second_pass

    def spy(self: pipeline._Progress) -> None:
        seconds.append(True)
        original(self)

    monkeypatch.setattr(pipeline._Progress, "second_pass", spy)
    rows = "".join(f"{i},,{i}\n" for i in range(20_000))
    text = f"n,sparse,v\n{rows}20000,5,2.5\n"
    progress: list[IngestProgress] = []
    result = ingest_csv(
        write(tmp_path / "w.csv", text),
        out_dir,
        IngestOptions(block_size=8 << 10),
        on_progress=progress.append,
    )
    assert seconds == [True]
    assert column_types(result) == {"n": "INT64", "sparse": "INT64", "v": "FLOAT64"}
    table = read_back(out_dir, result)
    assert table.column("v").to_pylist()[:2] == [0.0, 1.0]
    assert table.column("v").to_pylist()[-1] == 2.5
    assert table.column("sparse").null_count == 20_000
    assert published_files(out_dir) == ["part-00000.parquet"]
    fractions = [p.fraction for p in progress]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_one_pass_when_types_hold(
    tmp_path: Path, out_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline, "WARMUP_BYTES", 1)
    monkeypatch.setattr(pipeline._Progress, "second_pass", lambda self: pytest.fail("2nd pass"))
    rows = "".join(f"{i},{i * 1.5}\n" for i in range(20_000))
    result = ingest_csv(
        write(tmp_path / "w.csv", f"a,b\n{rows}"), out_dir, IngestOptions(block_size=8 << 10)
    )
    assert column_types(result) == {"a": "INT64", "b": "FLOAT64"}
    assert pq.ParquetFile(out_dir / "part-00000.parquet").metadata.num_rows == 20_000


def test_only_repetitive_columns_are_dictionary_encoded(tmp_path: Path, out_dir: Path) -> None:
    rows = "".join(f"user-{i},{['Tokyo', 'Osaka', 'Kyoto'][i % 3]},{i % 7}\n" for i in range(5000))
    result = ingest(write(tmp_path / "d.csv", "user,city,weekday\n" + rows), out_dir)
    metadata = pq.ParquetFile(out_dir / result.files[0]).metadata.row_group(0)
    encodings = {metadata.column(i).path_in_schema: metadata.column(i).encodings for i in range(3)}
    assert "RLE_DICTIONARY" in encodings["city"]
    assert "RLE_DICTIONARY" in encodings["weekday"]
    assert "RLE_DICTIONARY" not in encodings["user"]
    assert read_back(out_dir, result).column("city").to_pylist()[:3] == ["Tokyo", "Osaka", "Kyoto"]


def test_reads_are_held_back_until_the_consumer_catches_up(tmp_path: Path) -> None:
    path = write(tmp_path / "big.csv", b"x" * (64 << 10))
    stream = SourceStream(path, "utf-8", transcode=False, max_ahead=2)
    reader = threading.Thread(target=lambda: [stream.read(1024) for _ in range(10)])
    reader.start()
    time.sleep(0.3)
    assert stream.bytes_read == 2 * 1024  # two blocks ahead, then it waits
    stream.advance()
    stream.advance()
    time.sleep(0.3)
    assert stream.bytes_read == 4 * 1024
    stream.stop()
    reader.join(timeout=2)
    assert not reader.is_alive()
    stream.close()


# -- progress and cancel ------------------------------------------------------------------------


def test_progress_reports_grow_to_the_whole_file(tmp_path: Path, out_dir: Path) -> None:
    rows = "".join(f"{i},{i}\n" for i in range(100_000))
    path = write(tmp_path / "p.csv", "a,b\n" + rows)
    progress: list[IngestProgress] = []
    result = ingest_csv(
        path, out_dir, IngestOptions(block_size=16 << 10), on_progress=progress.append
    )
    assert progress, "no progress was reported"
    assert [p.fraction for p in progress] == sorted(p.fraction for p in progress)
    last = progress[-1]
    total = path.stat().st_size
    assert (last.fraction, last.bytes_processed, last.total_bytes) == (1.0, total, total)
    assert last.rows_processed == result.row_count == 100_000
    assert result.bytes_read == total


def test_progress_is_reported_while_working(
    tmp_path: Path, out_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline, "PROGRESS_INTERVAL", 0.0)
    rows = "".join(f"{i}\n" for i in range(50_000))
    progress: list[IngestProgress] = []
    ingest_csv(
        write(tmp_path / "p.csv", "a\n" + rows),
        out_dir,
        IngestOptions(block_size=16 << 10),
        on_progress=progress.append,
    )
    partial = [p for p in progress if 0 < p.fraction < 1]
    assert len(partial) >= 5
    assert all(0 < p.rows_processed < 50_000 for p in partial)


def test_cancel_stops_the_job_and_publishes_nothing(tmp_path: Path, out_dir: Path) -> None:
    rows = "".join(f"{i},{i}\n" for i in range(100_000))
    path = write(tmp_path / "c.csv", "a,b\n" + rows)
    polls = 0

    def should_cancel() -> bool:
        nonlocal polls
        polls += 1
        return polls > 5

    with pytest.raises(IngestCancelled):
        ingest_csv(path, out_dir, IngestOptions(block_size=16 << 10), should_cancel=should_cancel)
    assert polls == 6
    assert published_files(out_dir) == []
    assert list(out_dir.iterdir()) == []  # the temporary file was removed too


def test_scan_can_be_cancelled(tmp_path: Path) -> None:
    with pytest.raises(IngestCancelled):
        scan_csv(write(tmp_path / "c.csv", "a\n1\n"), IngestOptions(), should_cancel=lambda: True)


def test_ingest_failed_is_a_plain_message() -> None:
    error = IngestFailed("line 3: expected 2 fields (as in the first row) but found 3", line=3)
    assert str(error) == error.message
    assert error.line == 3
    assert IngestFailed("no data rows").line is None

"""Rule 4: type inference over the whole file, fallbacks that keep the text, Parquet types."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import pyarrow as pa
import pytest

from tilegraph.domain.datasets import ColumnType
from tilegraph.ingest import IngestOptions, scan_csv
from tilegraph.ingest.inference import PARSERS, infer_block, join

from .helpers import column_types, ingest, read_back, write

T = ColumnType


def _strings(*values: str | None) -> pa.Array:
    return pa.array(list(values), pa.string())


def _type_of(*values: str | None) -> ColumnType | None:
    return infer_block(_strings(*values), None)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (("1", "-2", "30000000000"), T.INT64),
        (("0", "1", "1", "0"), T.INT64),
        (("1", "2.5", "-.5", "1e3"), T.FLOAT64),
        (("true", "FALSE", "Yes", "no"), T.BOOL),
        (("2024-01-31", "2024/1/5", "2024年1月31日", "2024-2-29"), T.DATE),
        (("2024-01-31T12:34:56", "2024-01-31 12:34", "2024/01/31 12:34:56"), T.DATETIME),
        (("2024-01-31", "2024-01-31 12:00"), T.DATETIME),
        (("007", "1"), T.STRING),
        (("0x1F",), T.STRING),
        (("1", "true"), T.STRING),
        (("nan", "1.5"), T.STRING),
        (("12345678901234567890", "1.5"), T.STRING),
        (("2024-02-30",), T.STRING),
        (("2024-01/31",), T.STRING),
        (("2024-01-31", "5"), T.STRING),
        ((" 1", "2"), T.STRING),
        (("hello",), T.STRING),
        ((None, None), None),
    ],
)
def test_block_type_rules(values: tuple[str | None, ...], expected: ColumnType | None) -> None:
    assert _type_of(*values) is expected


def test_lattice_join() -> None:
    assert join(T.INT64, T.FLOAT64) is T.FLOAT64
    assert join(T.DATETIME, T.DATE) is T.DATETIME
    assert join(None, T.BOOL) is T.BOOL
    assert join(T.INT64, None) is T.INT64
    assert join(T.BOOL, T.INT64) is T.STRING
    assert join(T.DATE, T.FLOAT64) is T.STRING


def test_datetime_offsets_are_converted_to_utc() -> None:
    out = PARSERS[T.DATETIME](
        _strings(
            "2024-01-31T12:34:56Z",
            "2024-01-31T12:34:56+09:00",
            "2024-01-31 12:34-0130",
            "2024-01-31T12:34:56.1234567",
            "2024-01-31",
            None,
        )
    )
    assert out is not None
    assert out.type == pa.timestamp("us")
    assert out.to_pylist() == [
        dt.datetime(2024, 1, 31, 12, 34, 56),
        dt.datetime(2024, 1, 31, 3, 34, 56),
        dt.datetime(2024, 1, 31, 14, 4),
        dt.datetime(2024, 1, 31, 12, 34, 56, 123456),
        dt.datetime(2024, 1, 31),
        None,
    ]


def test_dates_in_every_format() -> None:
    out = PARSERS[T.DATE](
        _strings("2024-01-31", "2024/01/31", "2024/1/5", "2024年1月31日", "2024年12月1日", None)
    )
    assert out is not None and out.type == pa.date32()
    assert out.to_pylist() == [
        dt.date(2024, 1, 31),
        dt.date(2024, 1, 31),
        dt.date(2024, 1, 5),
        dt.date(2024, 1, 31),
        dt.date(2024, 12, 1),
        None,
    ]


def test_block_by_block_typing_equals_whole_column_typing() -> None:
    """The property the streaming design rests on, over random blocks of mixed values."""
    pool = [
        "1",
        "-7",
        "0",
        "2.5",
        "1e3",
        "007",
        "true",
        "No",
        "2024-01-31",
        "2024/2/3",
        "2024-01-31 10:00",
        "2024-01-31T10:00:00+09:00",
        "x",
        "",
        "nan",
        "0x1F",
        "2024-01-31T12",
        "2024-01-31 12:34:56.1234567",
        "2024/1/31 9:05",
        "2024年1月31日",
        "+5",
        "-0",
    ]
    rng = random.Random(1234)
    for _ in range(300):
        values = [rng.choice(pool) or None for _ in range(rng.randint(1, 12))]
        whole = infer_block(_strings(*values), None)
        state: ColumnType | None = None
        cuts = sorted({*rng.sample(range(1, len(values) + 1), k=min(3, len(values))), len(values)})
        blocks, start = [], 0
        for cut in cuts:
            blocks.append(values[start:cut])
            start = cut
        for block in blocks:
            state = join(state, infer_block(_strings(*block), state))
        assert state == whole, values
        if whole is not None:
            for block in blocks:  # converting any block with the final type succeeds
                assert PARSERS[whole](_strings(*block)) is not None, (values, block)


def test_parquet_types_and_values(tmp_path: Path, out_dir: Path) -> None:
    text = (
        "i,f,b,d,dt,s\n"
        "1,1.5,true,2024-01-31,2024-01-31T12:34:56,hello\n"
        "-2,2,No,2024/2/1,2024-02-01 08:00+09:00,世界\n"
    )
    result = ingest(write(tmp_path / "t.csv", text), out_dir)
    assert column_types(result) == {
        "i": "INT64",
        "f": "FLOAT64",
        "b": "BOOL",
        "d": "DATE",
        "dt": "DATETIME",
        "s": "STRING",
    }
    table = read_back(out_dir, result)
    assert table.schema.types == [
        pa.int64(),
        pa.float64(),
        pa.bool_(),
        pa.date32(),
        pa.timestamp("us"),
        pa.string(),
    ]
    assert table.to_pylist() == [
        {
            "i": 1,
            "f": 1.5,
            "b": True,
            "d": dt.date(2024, 1, 31),
            "dt": dt.datetime(2024, 1, 31, 12, 34, 56),
            "s": "hello",
        },
        {
            "i": -2,
            "f": 2.0,
            "b": False,
            "d": dt.date(2024, 2, 1),
            "dt": dt.datetime(2024, 1, 31, 23, 0),
            "s": "世界",
        },
    ]


@pytest.mark.parametrize(
    ("column", "last", "expected_type", "expected_first"),
    [
        ("1", "oops", "STRING", "1"),
        ("1", "2.5", "FLOAT64", 1.0),
        ("1", "007", "STRING", "1"),
        ("true", "maybe", "STRING", "true"),
        ("2024-01-31", "2024-01-31 10:00", "DATETIME", dt.datetime(2024, 1, 31)),
        ("2024-01-31", "31/01/2024", "STRING", "2024-01-31"),
        ("1.50", "n.a.", "STRING", "1.50"),
    ],
)
def test_a_value_on_the_last_line_decides_and_nothing_is_lost(
    tmp_path: Path,
    out_dir: Path,
    column: str,
    last: str,
    expected_type: str,
    expected_first: object,
) -> None:
    # Many blocks of conforming values first, so the odd one out is far from the start.
    rows = "".join(f"{i},{column}\n" for i in range(30_000))
    path = write(tmp_path / "late.csv", f"n,v\n{rows}{30_000},{last}\n")
    result = ingest(path, out_dir, block_size=16 << 10)
    assert column_types(result)["v"] == expected_type
    values = read_back(out_dir, result).column("v").to_pylist()
    assert len(values) == 30_001
    assert values[0] == expected_first
    if expected_type == "STRING":
        assert values[-1] == last  # the original text, unchanged


def test_original_text_is_kept_when_falling_back_to_string(tmp_path: Path, out_dir: Path) -> None:
    text = "code\n1\n+2\n1.50\n007\n2024-01-31\n TRUE\n"
    result = ingest(write(tmp_path / "s.csv", text), out_dir)
    assert column_types(result) == {"code": "STRING"}
    assert read_back(out_dir, result).column("code").to_pylist() == [
        "1",
        "+2",
        "1.50",
        "007",
        "2024-01-31",
        " TRUE",
    ]


def test_empty_fields_are_null_and_decide_nullability(tmp_path: Path, out_dir: Path) -> None:
    text = 'a,b,c,d\n1,,x,\n2,2.5,"",\n3,3,z,\n'
    result = ingest(write(tmp_path / "n.csv", text), out_dir)
    specs = {c.name: (c.type.value, c.nullable) for c in result.columns}
    assert specs == {
        "a": ("INT64", False),
        "b": ("FLOAT64", True),
        "c": ("STRING", True),
        "d": ("STRING", True),
    }
    table = read_back(out_dir, result)
    assert table.column("b").to_pylist() == [None, 2.5, 3.0]
    assert table.column("c").to_pylist() == ["x", None, "z"]
    assert table.column("d").to_pylist() == [None, None, None]


def test_scan_matches_ingest(tmp_path: Path, out_dir: Path) -> None:
    text = "id,when,ok\n1,2024-01-01,yes\n2,,no\n3,2024-01-03 10:00,\n"
    path = write(tmp_path / "s.csv", text)
    scan = scan_csv(path, IngestOptions())
    result = ingest(path, out_dir)
    assert scan.columns == result.columns
    assert [(c.type.value, c.nullable) for c in scan.columns] == [
        ("INT64", False),
        ("DATETIME", True),
        ("BOOL", True),
    ]
    assert scan.row_count == result.row_count == 3
    assert (scan.encoding, scan.delimiter, scan.has_header) == ("utf-8", ",", True)

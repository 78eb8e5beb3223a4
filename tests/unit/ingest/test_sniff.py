"""Rules 2 and 3: delimiter and header sniffing, and usable column names."""

from __future__ import annotations

from pathlib import Path

import pytest

from tilegraph.ingest import IngestFailed, IngestOptions, scan_csv
from tilegraph.ingest.sniff import detect_header, sniff, unique_names

from .helpers import column_types, ingest, read_back, write


@pytest.mark.parametrize("delimiter", [",", "\t", ";", "|"], ids=["comma", "tab", "semi", "pipe"])
def test_each_delimiter_is_detected_despite_quoted_other_delimiters(
    tmp_path: Path, out_dir: Path, delimiter: str
) -> None:
    others = "".join(d for d in ",\t;|" if d != delimiter)
    rows = [
        ["name", "note", "amount"],
        ["alpha", f'"x{others}y"', "1"],
        ["beta", f'"{others}{others}"', "2"],
        ["gamma", f'"plain {others[0]} text"', "3"],
    ]
    text = "".join(delimiter.join(row) + "\n" for row in rows)
    result = ingest(write(tmp_path / "d.csv", text), out_dir)
    assert result.delimiter == delimiter
    assert column_types(result) == {"name": "STRING", "note": "STRING", "amount": "INT64"}
    table = read_back(out_dir, result)
    assert table.column("note").to_pylist() == [
        f"x{others}y",
        f"{others}{others}",
        f"plain {others[0]} text",
    ]


def test_quoted_commas_do_not_make_a_semicolon_file_comma_separated() -> None:
    text = 'a;b;c\n"1,5";"2,5";"x,y,z"\n"3,0";"4,1";"p,q,r"\n'
    dialect = sniff(text, complete=True)
    assert dialect.delimiter == ";"
    assert dialect.names == ["a", "b", "c"]


def test_decimal_commas_in_a_semicolon_file() -> None:
    text = "name;weight;height\nA;1,5;2,5\nB;3,0;4,1\nC;5,5;6,5\n"
    assert sniff(text, complete=True).delimiter == ";"


def test_single_column_file(tmp_path: Path, out_dir: Path) -> None:
    result = ingest(write(tmp_path / "one.csv", "value\n1\n2\n3\n"), out_dir)
    assert column_types(result) == {"value": "INT64"}
    assert read_back(out_dir, result).column("value").to_pylist() == [1, 2, 3]


def test_given_delimiter_is_used(tmp_path: Path, out_dir: Path) -> None:
    # Sniffing would say ","; the user says ";", so each line is one field.
    path = write(tmp_path / "a.csv", "a,b\n1,2\n3,4\n")
    result = ingest(path, out_dir, delimiter=";")
    assert result.delimiter == ";"
    assert [c.name for c in result.columns] == ["a,b"]
    assert read_back(out_dir, result).column(0).to_pylist() == ["1,2", "3,4"]


@pytest.mark.parametrize("bad", ["", ";;", '"', "\n"])
def test_invalid_given_delimiter_is_refused(tmp_path: Path, out_dir: Path, bad: str) -> None:
    with pytest.raises(IngestFailed, match="invalid delimiter"):
        ingest(write(tmp_path / "a.csv", "a,b\n1,2\n"), out_dir, delimiter=bad)


def test_header_over_typed_columns(tmp_path: Path) -> None:
    scan = scan_csv(
        write(tmp_path / "h.csv", "id,price,day\n1,2.5,2024-01-31\n2,3,2024-02-01\n"),
        IngestOptions(),
    )
    assert scan.has_header is True
    assert [c.name for c in scan.columns] == ["id", "price", "day"]
    assert scan.row_count == 2


def test_headerless_file_gets_generated_names(tmp_path: Path, out_dir: Path) -> None:
    result = ingest(write(tmp_path / "n.csv", "1,Tokyo,2.5\n2,Osaka,3.5\n3,Kyoto,4\n"), out_dir)
    assert column_types(result) == {
        "column_1": "INT64",
        "column_2": "STRING",
        "column_3": "FLOAT64",
    }
    assert result.row_count == 3
    assert read_back(out_dir, result).column("column_1").to_pylist() == [1, 2, 3]


def test_headerless_file_with_dates_and_text(tmp_path: Path) -> None:
    scan = scan_csv(
        write(tmp_path / "n.csv", "2024-01-01,open\n2024-01-02,closed\n"), IngestOptions()
    )
    assert scan.has_header is False
    assert [c.name for c in scan.columns] == ["column_1", "column_2"]
    assert scan.columns[0].type.value == "DATE"


def test_a_text_cell_over_a_typed_column_outweighs_numbers_over_numbers() -> None:
    assert detect_header([["id", "2023", "2024"], ["1", "100", "120"]]) is True
    # Without such a column, numbers over numbers say "data" (years as names are ambiguous).
    assert detect_header([["region", "2023", "2024"], ["Tokyo", "100", "120"]]) is False


def test_all_text_file_is_taken_to_have_a_header() -> None:
    assert detect_header([["name", "city"], ["Alice", "Tokyo"], ["Bob", "Osaka"]]) is True
    assert detect_header([["Alice", "Tokyo"], ["Alice", "Osaka"]]) is True
    assert detect_header([["Tokyo", "Tokyo"], ["Osaka", "Kyoto"]]) is False  # repeated cells


def test_single_typed_row_is_data(tmp_path: Path, out_dir: Path) -> None:
    result = ingest(write(tmp_path / "one.csv", "1,2\n"), out_dir)
    assert result.row_count == 1
    assert [c.name for c in result.columns] == ["column_1", "column_2"]


def test_unique_names_example_from_the_contract() -> None:
    assert unique_names(["a", "a", "", " "]) == ["a", "a_2", "column_3", "column_4"]


def test_unique_names_strip_and_avoid_existing_suffixes() -> None:
    assert unique_names(["  id ", "a_2", "a", "a", "\tname\t"]) == ["id", "a_2", "a", "a_3", "name"]
    assert unique_names(["column_2", ""]) == ["column_2", "column_2_2"]


def test_header_names_are_cleaned_end_to_end(tmp_path: Path, out_dir: Path) -> None:
    path = write(tmp_path / "h.csv", 'a,a,," "\n1,2,3,4\n5,6,7,8\n')
    result = ingest(path, out_dir)
    assert [c.name for c in result.columns] == ["a", "a_2", "column_3", "column_4"]
    table = read_back(out_dir, result)
    assert table.column_names == ["a", "a_2", "column_3", "column_4"]
    assert table.column("a_2").to_pylist() == [2, 6]

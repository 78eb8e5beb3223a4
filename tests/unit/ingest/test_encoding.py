"""Rule 1: encoding detection from a sample, and undecodable text anywhere in the file."""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Any

import pytest

from tilegraph.ingest import IngestFailed, IngestOptions, scan_csv
from tilegraph.ingest import encoding as encoding_module
from tilegraph.ingest.encoding import SAMPLE_BYTES, detect_encoding

from .helpers import ingest, read_back, write

JAPANESE = "地域,売上,日付\n東京,100,2024-01-31\n大阪,200,2024-02-01\n名古屋,300,2024-02-02\n"
WESTERN = "nom,ville,prix\nJosé,Montréal,1.5\nFrançois,Orléans,2\nZoë,Köln,3.25\nAnaïs,Besançon,4\n"


def _utf16_be_with_bom(text: str) -> bytes:
    return codecs.BOM_UTF16_BE + text.encode("utf-16-be")


def _utf16_le_with_bom(text: str) -> bytes:
    return codecs.BOM_UTF16_LE + text.encode("utf-16-le")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (JAPANESE.encode("utf-8"), "utf-8"),
        (codecs.BOM_UTF8 + JAPANESE.encode("utf-8"), "utf-8-sig"),
        (JAPANESE.encode("cp932"), "cp932"),
        (JAPANESE.encode("euc_jp"), "euc_jp"),
        (_utf16_le_with_bom(JAPANESE), "utf-16"),
        (_utf16_be_with_bom(JAPANESE), "utf-16"),
    ],
    ids=["utf-8", "utf-8-bom", "cp932", "euc-jp", "utf-16-le-bom", "utf-16-be-bom"],
)
def test_japanese_text_is_decoded_in_every_supported_encoding(
    tmp_path: Path, out_dir: Path, raw: bytes, expected: str
) -> None:
    path = write(tmp_path / "jp.csv", raw)
    result = ingest(path, out_dir)
    assert result.encoding == expected
    assert [c.name for c in result.columns] == ["地域", "売上", "日付"]
    table = read_back(out_dir, result)
    assert table.column("地域").to_pylist() == ["東京", "大阪", "名古屋"]
    assert table.column("売上").to_pylist() == [100, 200, 300]


@pytest.mark.parametrize("codec", ["cp1252", "latin-1"])
def test_western_legacy_text_is_read_as_cp1252(tmp_path: Path, out_dir: Path, codec: str) -> None:
    path = write(tmp_path / "fr.csv", WESTERN, codec)
    result = ingest(path, out_dir)
    assert result.encoding == "cp1252"
    table = read_back(out_dir, result)
    assert table.column("nom").to_pylist() == ["José", "François", "Zoë", "Anaïs"]
    assert table.column("ville").to_pylist() == ["Montréal", "Orléans", "Köln", "Besançon"]


def test_cp1252_only_characters_survive(tmp_path: Path, out_dir: Path) -> None:
    text = "item,price\nCafé “crème”,3€\nThé – vert,2€\n"
    result = ingest(write(tmp_path / "euro.csv", text, "cp1252"), out_dir)
    assert result.encoding == "cp1252"
    assert read_back(out_dir, result).column("price").to_pylist() == ["3€", "2€"]


def test_utf16_without_bom_is_recognised(tmp_path: Path, out_dir: Path) -> None:
    result = ingest(write(tmp_path / "u16.csv", JAPANESE, "utf-16-le"), out_dir)
    assert result.encoding == "utf-16-le"
    assert read_back(out_dir, result).column("地域").to_pylist() == ["東京", "大阪", "名古屋"]


def test_multibyte_character_cut_by_the_sample_end_is_not_an_error() -> None:
    cut = ("東京,大阪\n" * 100_000).encode("utf-8")[:SAMPLE_BYTES]
    with pytest.raises(UnicodeDecodeError):
        cut.decode("utf-8")  # the sample really ends inside a character
    assert detect_encoding(cut, complete=False) == "utf-8"
    assert encoding_module.decode_sample(cut, "utf-8", complete=False).endswith("東")
    with pytest.raises(IngestFailed, match="utf-8"):
        # The same bytes as a whole file do end in a broken character.
        encoding_module.decode_sample(cut, "utf-8", complete=True)


def test_large_file_whose_sample_ends_mid_character(tmp_path: Path, out_dir: Path) -> None:
    line = "名前,値\n"
    body = "".join(f"東京{i % 10},{i}\n" for i in range(120_000))
    raw = (line + body).encode("utf-8")
    assert len(raw) > SAMPLE_BYTES
    assert raw[SAMPLE_BYTES] & 0xC0 == 0x80, "the sample must end inside a character"
    result = ingest(write(tmp_path / "big.csv", raw), out_dir)
    assert result.encoding == "utf-8"
    assert result.row_count == 120_000
    table = read_back(out_dir, result)
    assert table.column("名前").to_pylist()[-1] == "東京9"
    assert table.column("値").to_pylist()[-1] == 119_999


def test_the_detector_only_ever_sees_the_sample(
    tmp_path: Path, out_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []
    original = encoding_module.charset_normalizer.from_bytes

    def spy(data: bytes, *args: Any, **kwargs: Any) -> Any:
        seen.append(len(data))
        return original(data, *args, **kwargs)

    monkeypatch.setattr(encoding_module.charset_normalizer, "from_bytes", spy)
    rows = "".join(f"Zoë {i},Montréal,{i}\n" for i in range(200_000))
    path = write(tmp_path / "big.csv", "nom,ville,n\n" + rows, "cp1252")
    assert path.stat().st_size > 3 * SAMPLE_BYTES
    result = ingest(path, out_dir)
    assert result.encoding == "cp1252"
    assert result.row_count == 200_000
    assert seen and max(seen) <= SAMPLE_BYTES


def test_utf8_file_never_reaches_the_detector(
    tmp_path: Path, out_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("strict UTF-8 should have been enough")

    monkeypatch.setattr(encoding_module.charset_normalizer, "from_bytes", fail)
    assert ingest(write(tmp_path / "a.csv", JAPANESE), out_dir).encoding == "utf-8"


def test_user_encoding_overrides_detection(tmp_path: Path, out_dir: Path) -> None:
    path = write(tmp_path / "jp.csv", JAPANESE, "cp932")
    result = ingest(path, out_dir, encoding="latin-1")
    assert result.encoding == "iso8859-1"
    expected = "東京".encode("cp932").decode("latin-1")
    assert read_back(out_dir, result).column(0).to_pylist()[0] == expected


def test_forced_encoding_that_keeps_the_bom_does_not_leak_it(tmp_path: Path, out_dir: Path) -> None:
    path = write(tmp_path / "bom.csv", _utf16_le_with_bom("1,2\n3,4\n"))
    result = ingest(path, out_dir, encoding="utf-16-le")
    assert [c.type.value for c in result.columns] == ["INT64", "INT64"]
    assert read_back(out_dir, result).column(0).to_pylist() == [1, 3]


def test_user_encoding_names_are_normalised(tmp_path: Path) -> None:
    path = write(tmp_path / "jp.csv", JAPANESE, "cp932")
    scan = scan_csv(path, IngestOptions(encoding="CP932"))
    assert scan.encoding == "cp932"
    assert [c.name for c in scan.columns] == ["地域", "売上", "日付"]


def test_unknown_user_encoding_is_refused(tmp_path: Path, out_dir: Path) -> None:
    path = write(tmp_path / "a.csv", "a,b\n1,2\n")
    with pytest.raises(IngestFailed, match="unknown text encoding 'klingon'"):
        ingest(path, out_dir, encoding="klingon")


def test_invalid_utf8_beyond_the_sample_names_encoding_and_line(
    tmp_path: Path, out_dir: Path
) -> None:
    lines = [b"id,name\n"] + [f"{i},name {i}\n".encode() for i in range(100_000)]
    bad_line = len(lines) + 1
    lines.append(b"100000,caf\xe9\n")
    lines.append(b"100001,ok\n")
    path = write(tmp_path / "bad.csv", b"".join(lines))
    assert path.stat().st_size > SAMPLE_BYTES
    with pytest.raises(IngestFailed) as caught:
        ingest(path, out_dir)
    assert caught.value.line == bad_line
    assert "utf-8" in caught.value.message
    assert f"line {bad_line}" in caught.value.message
    assert str(caught.value) == caught.value.message


def test_invalid_cp932_beyond_the_sample_names_encoding_and_line(
    tmp_path: Path, out_dir: Path
) -> None:
    rows = "".join(f"東京,{i}\n" for i in range(150_000))
    raw = ("地域,値\n" + rows).encode("cp932")
    bad_line = 150_002
    raw += b"\x81\x20bad,1\n" + "大阪,2\n".encode("cp932")
    path = write(tmp_path / "bad.csv", raw)
    with pytest.raises(IngestFailed) as caught:
        ingest(path, out_dir, encoding="cp932")
    assert caught.value.line == bad_line
    assert "cp932" in caught.value.message
    assert f"line {bad_line}" in caught.value.message


def test_undecodable_bytes_in_the_sample_for_a_forced_encoding(
    tmp_path: Path, out_dir: Path
) -> None:
    path = write(tmp_path / "a.csv", b"a,b\n1,ok\n2,\x81\x20\n")
    with pytest.raises(IngestFailed) as caught:
        ingest(path, out_dir, encoding="cp932")
    assert caught.value.line == 3
    assert "cp932" in caught.value.message

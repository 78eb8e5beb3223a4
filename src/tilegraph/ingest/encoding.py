"""Text encoding detection from a bounded sample of the file.

Why a sample: running a detector over a whole upload is slow (charset-normalizer took 10.8 s on a
112 MB CP1252 file) and the answer does not improve. Order of checks, cheapest and surest first:
byte-order marks, binary signatures, strict UTF-8, then charset-normalizer on the sample only.
Bytes beyond the sample that do not fit the chosen encoding are caught later, while the file is
streamed, with their line number (see ``source.py``).
"""

from __future__ import annotations

import codecs
from pathlib import Path

import charset_normalizer

from tilegraph.ingest.errors import IngestFailed

#: Never read (or hand to a detector) more than this much of the file to decide its encoding.
SAMPLE_BYTES = 1 << 20

# Longest first: the UTF-32 LE mark starts with the UTF-16 LE one.
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)

# Uploads people mistake for CSV; named so the message can say what the file looks like.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "a gzip archive"),
    (b"PK\x03\x04", "a ZIP archive (an .xlsx workbook is one)"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an Office document (.xls)"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"%PDF-", "a PDF document"),
    (b"PAR1", "a Parquet file"),
    (b"\xfd7zXZ\x00", "an xz archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"BZh", "a bzip2 archive"),
)

_SJIS_FAMILY = frozenset({"cp932", "shift_jis", "shift_jis_2004", "shift_jisx0213", "ms932"})
_EUC_JP_FAMILY = frozenset({"euc_jp", "euc_jis_2004", "euc_jisx0213"})
_PREFERRED = (
    ("cp932", _SJIS_FAMILY),
    ("euc_jp", _EUC_JP_FAMILY),
    ("cp1252", frozenset({"cp1252"})),
)
_RARE_LATIN = frozenset(
    {
        "cp437",
        "cp775",
        "cp850",
        "cp852",
        "cp857",
        "cp858",
        "cp860",
        "cp861",
        "cp863",
        "cp865",
        "hp_roman8",
        "iso8859_10",
        "iso8859_13",
        "iso8859_14",
        "iso8859_16",
        "mac_iceland",
        "mac_latin2",
        "mac_roman",
        "mac_turkish",
    }
)
# A candidate this much messier than the detector's favourite is not preferred over it.
_CHAOS_TOLERANCE = 0.1
# Control characters (other than tab, CR, LF, FF and ESC) allowed per character of text.
_MAX_CONTROL_RATIO = 0.01
_CONTROL_CHARS = frozenset(chr(c) for c in range(32)) - {"\t", "\n", "\r", "\x0c", "\x1b"}
# (NUL counts too: UTF-16 guessed from NUL bytes must not decode to NUL characters.)


def read_sample(path: Path) -> tuple[bytes, bool]:
    """The first ``SAMPLE_BYTES`` of the file, and whether that is the whole file."""
    with path.open("rb") as f:
        sample = f.read(SAMPLE_BYTES + 1)
    return sample[:SAMPLE_BYTES], len(sample) <= SAMPLE_BYTES


def normalize_encoding(name: str) -> str:
    """Python's canonical codec name for a user-given encoding, or IngestFailed if unknown."""
    try:
        return codecs.lookup(name).name
    except (LookupError, TypeError):
        raise IngestFailed(f"unknown text encoding {name!r}") from None


def is_utf8(encoding: str) -> bool:
    """Whether pyarrow can read the bytes as they are (it skips a UTF-8 byte-order mark)."""
    return encoding in ("utf-8", "utf-8-sig")


def is_wide(encoding: str) -> bool:
    """UTF-16/32 text is full of NUL bytes, so the binary check must not look at raw bytes."""
    return encoding.replace("-", "_").startswith(("utf_16", "utf_32"))


def bom_encoding(sample: bytes) -> str | None:
    """The encoding a byte-order mark announces, if the sample starts with one."""
    for bom, name in _BOMS:
        if sample.startswith(bom):
            return name
    return None


def check_not_binary(sample: bytes, encoding: str | None) -> None:
    """Refuse archives, images and other binary files before trying to read them as text.

    ``encoding`` is the forced or BOM-announced encoding, if any: UTF-16/32 legitimately contain
    NUL bytes, so for them only the signatures are checked here (control characters are checked on
    the decoded text by ``check_text``).
    """
    for signature, what in _SIGNATURES:
        if sample.startswith(signature) and (signature != b"BZh" or sample[4:10] == b"1AY&SY"):
            raise IngestFailed(f"not a text CSV file (it looks like {what})")
    if encoding is not None and is_wide(encoding):
        return
    if b"\x00" in sample and _utf16_without_bom(sample) is None:
        raise IngestFailed("not a text CSV file (it contains NUL bytes)")


def check_text(text: str) -> None:
    """Refuse decoded text that is mostly control characters: binary data in a text codec."""
    if "\x00" in text:
        raise IngestFailed("not a text CSV file (it contains NUL characters)")
    if _control_count(text) > len(text) * _MAX_CONTROL_RATIO:
        raise IngestFailed("not a text CSV file (it contains binary control characters)")


def detect_encoding(sample: bytes, *, complete: bool) -> str:
    """Decide the encoding of the file from its sample.

    ``complete`` says whether the sample is the whole file; if not, a multi-byte character cut
    at the end of the sample is not held against an encoding.
    """
    bom = bom_encoding(sample)
    if bom is not None:
        return bom
    check_not_binary(sample, None)
    if b"\x00" in sample:
        wide = _utf16_without_bom(sample)
        if wide is not None:
            return wide
    if _decodes(sample, "utf-8", complete=complete):
        return "utf-8"
    return _detect_legacy(_trim_to_line(sample, complete=complete))


def decode_sample(sample: bytes, encoding: str, *, complete: bool) -> str:
    """The sample as text, failing with the line and byte of the first undecodable bytes."""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    try:
        text = decoder.decode(sample, final=complete)
    except UnicodeDecodeError as e:
        raise decode_error(encoding, sample, e.start, e.end) from None
    return text.removeprefix("\ufeff")


def decode_error(
    encoding: str, data: bytes, start: int, end: int, *, base: int = 0, lines_before: int = 0
) -> IngestFailed:
    """The message for bytes ``data[start:end]`` that ``encoding`` cannot decode.

    ``base`` is the file offset of ``data`` and ``lines_before`` the number of line breaks in the
    file before it. Line counting by LF bytes is exact for ASCII-compatible encodings only, so the
    line is left out for UTF-16/32.
    """
    offset = base + start
    bad = data[start : max(end, start + 1)][:4].hex(" ")
    if is_wide(encoding):
        return IngestFailed(
            f"the file is not valid {encoding} text: undecodable bytes {bad} at byte {offset}; "
            "choose the file's encoding explicitly"
        )
    line = lines_before + data.count(b"\n", 0, start) + 1
    return IngestFailed(
        f"the file is not valid {encoding} text: undecodable bytes {bad} on line {line} "
        f"(byte {offset}); choose the file's encoding explicitly",
        line=line,
    )


def _control_count(text: str) -> int:
    return sum(text.count(ch) for ch in _CONTROL_CHARS)


def _decodes(data: bytes, encoding: str, *, complete: bool) -> bool:
    try:
        codecs.getincrementaldecoder(encoding)("strict").decode(data, final=complete)
    except UnicodeDecodeError:
        return False
    return True


def _trim_to_line(sample: bytes, *, complete: bool) -> bytes:
    """Cut a partial sample after its last line break so no character is cut in half."""
    if complete:
        return sample
    cut = sample.rfind(b"\n")
    return sample[: cut + 1] if cut > 0 else sample


def _utf16_without_bom(sample: bytes) -> str | None:
    """UTF-16 without a BOM: mostly-ASCII text has a NUL in every other byte, on one side."""
    n = len(sample) - len(sample) % 2
    half = n // 2
    if half == 0:
        return None
    even = sample[0:n:2].count(0)
    odd = sample[1:n:2].count(0)
    for nuls, others, name in ((odd, even, "utf-16-le"), (even, odd, "utf-16-be")):
        if nuls > 0.2 * half and others <= 0.01 * half:
            try:
                text = codecs.getincrementaldecoder(name)("strict").decode(sample[:n])
            except UnicodeDecodeError:
                continue
            if _control_count(text) <= len(text) * _MAX_CONTROL_RATIO:
                return name
    return None


def _detect_legacy(sample: bytes) -> str:
    """Ask charset-normalizer, then prefer the common legacy encodings among equal readings.

    On short samples the detector often names a rarer code page (cp1250, cp775, mac_latin2,
    euc_jis_2004) that reads the sample almost or exactly like the one the file was written
    in (cp1252, euc_jp); it lists exact equivalents in ``could_be_from_charset``.

    1. The first candidate not clearly messier than the favourite that can be cp932, euc_jp or
       cp1252 gives that encoding (the tolerance keeps Chinese and Korean text, which also
       decodes as euc_jis_2004, from being taken for Japanese).
    2. A favourite that is a DOS, Mac or rare Latin code page gives way to cp1252 if that is a
       candidate at all: CSV exports in those are rare, Windows-1252 ones are not.
    3. Otherwise the favourite.
    """
    matches = list(charset_normalizer.from_bytes(sample))
    if not matches:
        raise IngestFailed(
            "could not detect the file's text encoding; choose the encoding explicitly"
        )
    best = matches[0]
    for match in matches:
        if match.chaos > best.chaos + _CHAOS_TOLERANCE:
            continue
        names = {match.encoding, *match.could_be_from_charset}
        for preferred, family in _PREFERRED:
            if names & family and _decodes(sample, preferred, complete=False):
                return preferred
    if (
        best.encoding in _RARE_LATIN
        and _decodes(sample, "cp1252", complete=False)
        and any("cp1252" in {m.encoding, *m.could_be_from_charset} for m in matches)
    ):
        return "cp1252"
    return normalize_encoding(best.encoding)

"""Reading a delimited text file as exported by an HRIS or a spreadsheet.

Everything here is about the file, not its meaning: which encoding, which delimiter, which
headers, and which line each record started on, so that every error can name file and line.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from coachbridge.csvcells import unescape_cell
from coachbridge.errors import InputDataError

DELIMITERS = (",", ";", "\t", "|")
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
# Signatures of files people pick by mistake instead of the CSV export.
_MAGIC = {
    b"PK\x03\x04": "a ZIP archive (an .xlsx workbook?); export the sheet as CSV",
    b"\xd0\xcf\x11\xe0": "an old Excel/Office document (.xls); export the sheet as CSV",
    b"%PDF": "a PDF document",
    b"\x1f\x8b": "a gzip archive",
}


@dataclass(frozen=True)
class Row:
    """One record: its values by header and the line it starts on (1 = the header line)."""

    line: int
    values: Mapping[str, str]


@dataclass(frozen=True)
class Table:
    path: Path
    encoding: str
    delimiter: str
    headers: tuple[str, ...]
    rows: tuple[Row, ...]
    digest: str  # SHA-256 of the file's bytes: the sync cursor, and a way to tell files apart
    titles: Mapping[str, str]  # case-folded header -> as the file writes it

    def title(self, key: str) -> str:
        """A column's header as the file spells it (messages should match what users see)."""
        return self.titles.get(key, key)

    def where(self, line: int) -> str:
        return f"{self.path}:{line}"


def decode(path: Path, raw: bytes, encoding: str = "auto") -> tuple[str, str]:
    """The file's text and the encoding used. ``auto``: UTF-16/UTF-8 by BOM, UTF-8, then cp1252."""
    for magic, what in _MAGIC.items():
        if raw.startswith(magic):
            raise InputDataError(f"{path}: not a text file: it is {what}")
    if encoding == "auto":
        if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            encoding = "utf-16"  # Excel's "Unicode text" export
        elif b"\x00" in raw:
            raise InputDataError(f"{path}: not a text file (it contains NUL bytes)")
        else:
            try:
                raw.decode("utf-8-sig")
                encoding = "utf-8"
            except UnicodeDecodeError:
                encoding = "cp1252"  # what Excel writes for "CSV (Comma delimited)" on Windows
    elif b"\x00" in raw and not encoding.startswith("utf-16"):
        raise InputDataError(f"{path}: not a text file (it contains NUL bytes)")
    try:
        text = raw.decode("utf-8-sig" if encoding in ("utf-8", "utf-8-sig") else encoding)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputDataError(
            f"{path}:{line}: not a text file in {encoding} (byte 0x{raw[exc.start]:02x}); "
            "set `encoding` for this connector"
        ) from None
    if "\x00" in text or _control_ratio(text) > 0.01:
        raise InputDataError(f"{path}: not a text file (it contains binary control characters)")
    return text, encoding


def _control_ratio(text: str) -> float:
    sample = text[:65536]
    controls = sum(1 for ch in sample if ord(ch) < 32 and ch not in "\t\n\r\f")
    return controls / max(len(sample), 1)


def _first_record(text: str, delimiter: str) -> list[str]:
    try:
        return next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), [])
    except csv.Error:
        return []


def detect_delimiter(text: str, expected_headers: Sequence[str]) -> str:
    """The delimiter under which the header row names the most expected columns.

    The header is the most reliable witness: data cells contain commas and semicolons, header
    names rarely do. Ties (e.g. a file with none of the expected headers) fall back to
    ``csv.Sniffer`` and then to the delimiter that splits the header into the most cells.
    """
    expected = {h.strip().casefold() for h in expected_headers}
    scores: dict[str, tuple[int, int]] = {}
    for delimiter in DELIMITERS:
        cells = [c.strip().casefold() for c in _first_record(text, delimiter)]
        scores[delimiter] = (len(expected.intersection(cells)), len(cells))
    best = max(DELIMITERS, key=lambda d: scores[d])
    if scores[best][0] > 0:
        return best
    try:
        sniffed = csv.Sniffer().sniff(text[:16384], delimiters="".join(DELIMITERS)).delimiter
    except csv.Error:
        sniffed = None
    return sniffed if sniffed in DELIMITERS else best


def read_table(
    path: Path,
    *,
    expected_headers: Sequence[str],
    required_headers: Sequence[str],
    encoding: str = "auto",
    delimiter: str = "auto",
) -> Table:
    """Read ``path`` whole; raise ``InputDataError`` naming file and line for anything malformed.

    Header matching ignores case and surrounding spaces. Cells are stripped and un-escaped
    (a ``'`` that coachbridge's CSV export put before a formula-like cell is removed).
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputDataError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise InputDataError(f"{path}: is a folder, not a file") from None
    except OSError as exc:
        raise InputDataError(f"{path}: cannot read: {exc.strerror}") from None
    text, used_encoding = decode(path, raw, encoding)
    if not text.strip():
        raise InputDataError(f"{path}: the file is empty (expected a header line)")
    if delimiter == "auto":
        delimiter = detect_delimiter(text, expected_headers)

    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows: list[Row] = []
    header: list[str] | None = None
    index: dict[str, int] = {}
    previous_end = 0
    try:
        for cells in reader:
            start, previous_end = previous_end + 1, reader.line_num
            if not any(c.strip() for c in cells):
                continue  # blank lines (often at the end of a file) carry nothing
            if header is None:
                header = [c.strip() for c in cells]
                index = _header_index(path, start, header, required_headers, delimiter)
                continue
            if len(cells) != len(header):
                raise InputDataError(
                    f"{path}:{start}: {len(cells)} fields, but the header has {len(header)} "
                    f"({_DELIMITER_NAMES.get(delimiter, repr(delimiter))}-separated); "
                    "check for an unquoted delimiter or a missing field"
                )
            rows.append(
                Row(start, {name: unescape_cell(cells[i].strip()) for name, i in index.items()})
            )
    except csv.Error as exc:
        # name the line the broken record starts on: an unclosed quote fails only at the end
        hint = " (a quote opened here is never closed?)" if "end of data" in str(exc) else ""
        raise InputDataError(f"{path}:{previous_end + 1}: malformed CSV: {exc}{hint}") from None
    assert header is not None  # text.strip() was not empty
    digest = hashlib.sha256(raw).hexdigest()
    titles = {h.casefold(): h for h in header if h}
    return Table(path, used_encoding, delimiter, tuple(index), tuple(rows), digest, titles)


def _header_index(
    path: Path, line: int, header: list[str], required: Sequence[str], delimiter: str
) -> dict[str, int]:
    """Header name (case-folded) -> column position; rejects duplicates and missing columns."""
    index: dict[str, int] = {}
    for position, name in enumerate(header):
        key = name.casefold()
        if not key:
            continue
        if key in index:
            raise InputDataError(f"{path}:{line}: the header names column {name!r} twice")
        index[key] = position
    missing = [name for name in required if name.strip().casefold() not in index]
    if missing:
        found = ", ".join(h for h in header if h) or "none"
        raise InputDataError(
            f"{path}:{line}: missing required column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)} (headers found: {found}; "
            f"read as {_DELIMITER_NAMES.get(delimiter, repr(delimiter))}-separated)"
        )
    return index

"""MIME type detection and text encoding detection, on bytes built in the tests."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from kernel_memory.extraction import (
    detect_mime_type,
    is_supported,
    mime,
    mime_type_from_name,
    normalize_mime_type,
)
from kernel_memory.extraction.encoding import decode_text, detect_encoding

PDF_BYTES = b"%PDF-1.7\n1 0 obj\n<< >>\nendobj\n%%EOF\n"
PNG_BYTES = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
JPEG_BYTES = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 32
GIF_BYTES = b"GIF89a" + b"\x00" * 32
TIFF_BYTES = b"II*\x00\x08\x00\x00\x00" + b"\x00" * 32
BMP_BYTES = b"BM" + (70).to_bytes(4, "little") + b"\x00" * 8 + (40).to_bytes(4, "little") + b"\x00" * 52
OLE_HEADER = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# Bytes of no known format, with NUL and control bytes as in compressed data.
RANDOM_BYTES = bytes((index * 7919 + 13) % 256 for index in range(600))


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    return buffer.getvalue()


CONTENT_TYPES = (
    b'<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>'
)
DOCX_BYTES = _zip({"[Content_Types].xml": CONTENT_TYPES, "word/document.xml": b"<w/>"})
XLSX_BYTES = _zip({"[Content_Types].xml": CONTENT_TYPES, "xl/workbook.xml": b"<x/>"})
XLSM_BYTES = _zip(
    {"[Content_Types].xml": CONTENT_TYPES.replace(b"/>", b">macroEnabled</Types>"), "xl/a.xml": b""}
)
PPTX_BYTES = _zip({"[Content_Types].xml": CONTENT_TYPES, "ppt/presentation.xml": b"<p/>"})
PLAIN_ZIP_BYTES = _zip({"notes.txt": b"hello"})


@pytest.mark.parametrize(
    ("file_name", "expected"),
    [
        ("a.txt", mime.PLAIN_TEXT),
        ("README.MD", mime.MARKDOWN),
        ("data.csv", mime.CSV),
        ("page.htm", mime.HTML),
        ("settings.json", mime.JSON),
        ("report.pdf", mime.PDF),
        ("memo.docx", mime.DOCX),
        ("sheet.xlsx", mime.XLSX),
        ("deck.pptx", mime.PPTX),
        ("photo.JPG", mime.JPEG),
        ("scan.tif", mime.TIFF),
        ("old.doc", mime.DOC),
        ("dir\\sub\\file.md", mime.MARKDOWN),
        ("no-extension", ""),
        ("archive.xyz", ""),
        ("export.jsonl", mime.PLAIN_TEXT),
    ],
)
def test_mime_type_from_name(file_name: str, expected: str) -> None:
    assert mime_type_from_name(file_name) == expected


@pytest.mark.parametrize(
    ("declared", "expected"),
    [
        ("text/html; charset=utf-8", mime.HTML),
        ("IMAGE/JPG", mime.JPEG),
        ("text/x-markdown", mime.MARKDOWN),
        (None, ""),
    ],
)
def test_normalize_mime_type(declared: str | None, expected: str) -> None:
    assert normalize_mime_type(declared) == expected


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (PDF_BYTES, mime.PDF),
        (DOCX_BYTES, mime.DOCX),
        (XLSX_BYTES, mime.XLSX),
        (XLSM_BYTES, mime.XLSM),
        (PPTX_BYTES, mime.PPTX),
        (PLAIN_ZIP_BYTES, mime.ZIP),
        (PNG_BYTES, mime.PNG),
        (JPEG_BYTES, mime.JPEG),
        (GIF_BYTES, mime.GIF),
        (TIFF_BYTES, mime.TIFF),
        (BMP_BYTES, mime.BMP),
        (OLE_HEADER + "WordDocument".encode("utf-16-le") + b"\x00" * 64, mime.DOC),
        (OLE_HEADER + "Workbook".encode("utf-16-le") + b"\x00" * 64, mime.XLS),
        (OLE_HEADER + b"\x00" * 64, mime.OLE_STORAGE),
    ],
)
def test_detect_signature_without_extension(data: bytes, expected: str) -> None:
    assert detect_mime_type(data, file_name="upload") == expected


@pytest.mark.parametrize(
    ("data", "file_name", "expected"),
    [
        (PDF_BYTES, "report.docx", mime.PDF),
        (DOCX_BYTES, "memo.pdf", mime.DOCX),
        (XLSX_BYTES, "sheet.docx", mime.XLSX),
        (PNG_BYTES, "picture.jpg", mime.PNG),
        (b"<!DOCTYPE html><html><body>Hi</body></html>", "page.pdf", mime.HTML),
        (b'{"a": 1}', "data.xlsx", mime.JSON),
        (b"just words", "notes.pdf", mime.PLAIN_TEXT),
    ],
)
def test_detect_wrong_extension(data: bytes, file_name: str, expected: str) -> None:
    assert detect_mime_type(data, file_name=file_name) == expected


@pytest.mark.parametrize(
    ("data", "file_name", "declared", "expected"),
    [
        (PDF_BYTES, "report", "text/plain", mime.PDF),
        (b"<html><p>x</p></html>", "page", "application/pdf", mime.HTML),
        (b"# Title\n", "notes.md", "text/plain", mime.MARKDOWN),
        (b"# Title\n", "notes.md", "application/octet-stream", mime.MARKDOWN),
        (b"a,b\n1,2\n", "export", "text/csv; charset=utf-8", mime.CSV),
        (DOCX_BYTES, "memo", "application/octet-stream", mime.DOCX),
    ],
)
def test_detect_wrong_declared_type(data: bytes, file_name: str, declared: str, expected: str) -> None:
    assert detect_mime_type(data, file_name=file_name, declared=declared) == expected


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"  \n<!doctype html>\n<title>x</title>", mime.HTML),
        (b'<?xml version="1.0"?>\n<html xmlns="http://www.w3.org/1999/xhtml"></html>', mime.HTML),
        (b'[{"id": 1}, {"id": 2}]', mime.JSON),
        (b"{ not json at all", mime.PLAIN_TEXT),
        ("caf\u00e9 au lait".encode("utf-16"), mime.PLAIN_TEXT),
        ("plain words in UTF-16 without a byte order mark".encode("utf-16-le"), mime.PLAIN_TEXT),
        ("Gr\u00fc\u00dfe aus K\u00f6ln".encode("cp1252"), mime.PLAIN_TEXT),
        (RANDOM_BYTES, mime.OCTET_STREAM),
    ],
)
def test_detect_text_without_extension(data: bytes, expected: str) -> None:
    assert detect_mime_type(data, file_name="upload") == expected


def test_detect_binary_named_as_text() -> None:
    assert detect_mime_type(RANDOM_BYTES, file_name="notes.txt") == mime.OCTET_STREAM


def test_detect_damaged_zip_keeps_claimed_office_type() -> None:
    # A truncated package keeps its claimed type, so the Word decoder reports the damage.
    assert detect_mime_type(DOCX_BYTES[:40], file_name="memo.docx") == mime.DOCX


def test_detect_legacy_doc_case(cases_dir: Path) -> None:
    data = (cases_dir / "legacy.doc").read_bytes()
    assert detect_mime_type(data, file_name="legacy.doc") == mime.DOC


def test_detect_unsupported_case(cases_dir: Path) -> None:
    data = (cases_dir / "unsupported.xyz").read_bytes()
    assert detect_mime_type(data, file_name="unsupported.xyz") == mime.OCTET_STREAM


@pytest.mark.parametrize(
    ("mime_type", "expected"),
    [
        (mime.PDF, True),
        ("text/html; charset=utf-8", True),
        (mime.JPEG, True),
        (mime.DOC, False),
        (mime.ZIP, False),
        (mime.OCTET_STREAM, False),
    ],
)
def test_is_supported(mime_type: str, expected: bool) -> None:
    assert is_supported(mime_type) is expected


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\xef\xbb\xbfhello", ("utf-8", 3)),
        ("hello".encode("utf-16"), ("utf-16-le", 2)),
        (b"\xfe\xff\x00h\x00i", ("utf-16-be", 2)),
        ("hello".encode("utf-32"), ("utf-32-le", 4)),
        ("hello world, this is text".encode("utf-16-be"), ("utf-16-be", 0)),
        ("na\u00efve".encode(), ("utf-8", 0)),
        ("na\u00efve \u2013 \u20ac5".encode("cp1252"), ("cp1252", 0)),
        (b"caf\xe9 \x81", ("latin-1", 0)),
    ],
)
def test_detect_encoding(data: bytes, expected: tuple[str, int]) -> None:
    assert detect_encoding(data) == expected


def test_decode_text_cp1252_without_replacement_characters() -> None:
    text = "Preis: 5 \u20ac \u2013 Gr\u00fc\u00dfe aus K\u00f6ln"
    assert decode_text(text.encode("cp1252")) == text


def test_decode_text_mostly_utf8_keeps_utf8() -> None:
    # One damaged byte in a UTF-8 file costs one character, not cp1252 mojibake everywhere.
    data = "日本語のテキスト、".encode() * 20 + b"\xff" + "終わり".encode()
    assert decode_text(data) == "日本語のテキスト、" * 20 + "\ufffd終わり"


def test_decode_text_drops_byte_order_mark() -> None:
    assert decode_text("\u00e9t\u00e9".encode("utf-8-sig")) == "\u00e9t\u00e9"

"""MIME type detection from a file's name, its declared content type and its first bytes.

The bytes win over the name and the declared type whenever they carry a
signature (PDF, ZIP-based Office, images, OLE2), because browsers and clients
often send `application/octet-stream` or a type guessed from a wrong
extension. Text content is separated from binary content by its encoding,
and HTML and JSON are recognised by their opening characters when neither the
name nor the declared type gives a type.
"""

from __future__ import annotations

import io
import json
import zipfile
import zlib
from pathlib import PurePosixPath

from kernel_memory.extraction.encoding import decode_text, utf16_byte_order

OCTET_STREAM = "application/octet-stream"

PLAIN_TEXT = "text/plain"
MARKDOWN = "text/markdown"
CSV = "text/csv"
TSV = "text/tab-separated-values"
HTML = "text/html"
XHTML = "application/xhtml+xml"
JSON = "application/json"

PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
XLSM = "application/vnd.ms-excel.sheet.macroEnabled.12"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
ZIP = "application/zip"

# Legacy binary Office formats (OLE2 compound files): detected so the error names them, never decoded.
DOC = "application/msword"
XLS = "application/vnd.ms-excel"
PPT = "application/vnd.ms-powerpoint"
OLE_STORAGE = "application/x-ole-storage"
OLE_TYPES = frozenset({DOC, XLS, PPT, OLE_STORAGE})

PNG = "image/png"
JPEG = "image/jpeg"
TIFF = "image/tiff"
BMP = "image/bmp"
GIF = "image/gif"
WEBP = "image/webp"

TEXT_TYPES = frozenset({PLAIN_TEXT, MARKDOWN, CSV, TSV, HTML, XHTML, JSON})
IMAGE_TYPES = frozenset({PNG, JPEG, TIFF, BMP, GIF, WEBP})

EXTENSIONS: dict[str, str] = {
    ".txt": PLAIN_TEXT,
    ".text": PLAIN_TEXT,
    ".log": PLAIN_TEXT,
    # JSON Lines: one record per line reads best as it is, and the file as a whole is not JSON.
    ".jsonl": PLAIN_TEXT,
    ".ndjson": PLAIN_TEXT,
    ".md": MARKDOWN,
    ".markdown": MARKDOWN,
    ".csv": CSV,
    ".tsv": TSV,
    ".tab": TSV,
    ".htm": HTML,
    ".html": HTML,
    ".xhtml": XHTML,
    ".json": JSON,
    ".pdf": PDF,
    ".docx": DOCX,
    ".xlsx": XLSX,
    ".xlsm": XLSM,
    ".pptx": PPTX,
    ".zip": ZIP,
    ".doc": DOC,
    ".xls": XLS,
    ".ppt": PPT,
    ".png": PNG,
    ".jpg": JPEG,
    ".jpeg": JPEG,
    ".jpe": JPEG,
    ".tif": TIFF,
    ".tiff": TIFF,
    ".bmp": BMP,
    ".gif": GIF,
    ".webp": WEBP,
}

# Spellings seen in the wild for the same types.
ALIASES: dict[str, str] = {
    "text/x-markdown": MARKDOWN,
    "text/json": JSON,
    "application/x-json": JSON,
    "text/x-csv": CSV,
    "application/csv": CSV,
    "application/x-pdf": PDF,
    "image/jpg": JPEG,
    "image/pjpeg": JPEG,
    "image/x-png": PNG,
    "image/x-ms-bmp": BMP,
    "image/x-bmp": BMP,
    "image/tif": TIFF,
    "image/x-tiff": TIFF,
    "application/x-zip-compressed": ZIP,
}

# Types that name the transport, not the content, so they count as not declared.
_UNINFORMATIVE = frozenset({"", OCTET_STREAM, "binary/octet-stream", "application/unknown"})

# Bytes of the file inspected for text sniffing; enough to judge the encoding.
_SNIFF_BYTES = 8192
# Largest file parsed whole to confirm that it is JSON when nothing else names the type.
_MAX_JSON_SNIFF_BYTES = 4 * 1024 * 1024
# Size of the DIB header that follows a BMP file header, for each known BMP version.
_BMP_DIB_HEADER_SIZES = frozenset({12, 16, 40, 52, 56, 64, 108, 124})
# Control bytes that plain text may contain: tab, line feed, form feed, carriage return, escape, backspace.
_TEXT_CONTROL_BYTES = frozenset({8, 9, 10, 12, 13, 27})


def normalize_mime_type(value: str | None) -> str:
    """Lower-case `value`, drop its parameters (`; charset=...`) and map known aliases."""
    if not value:
        return ""
    base = value.split(";", 1)[0].strip().lower()
    return ALIASES.get(base, base)


def mime_type_from_name(file_name: str) -> str:
    """Return the MIME type that the extension of `file_name` names, or "" when unknown."""
    suffix = PurePosixPath(file_name.replace("\\", "/")).suffix.lower()
    return EXTENSIONS.get(suffix, "")


def detect_mime_type(data: bytes, *, file_name: str, declared: str | None = None) -> str:
    """Return the MIME type of `data`, from its signature, its name and the declared type.

    Returns `application/octet-stream` when neither the bytes nor the hints
    identify a known type.
    """
    claims = [mime_type_from_name(file_name), normalize_mime_type(declared)]
    claims = [claim for claim in claims if claim and claim not in _UNINFORMATIVE]

    signature = _sniff_signature(data, claims=claims)
    if signature:
        return signature

    if _looks_like_text(data[:_SNIFF_BYTES]):
        for claim in claims:
            if claim in TEXT_TYPES or claim.startswith("text/"):
                return claim
        return _sniff_text_type(data)

    # Binary content without a known signature: trust a claimed binary format, so its
    # decoder reports the file as damaged instead of calling it unsupported.
    for claim in claims:
        if claim not in TEXT_TYPES and not claim.startswith("text/"):
            return claim
    return OCTET_STREAM


def _sniff_signature(data: bytes, *, claims: list[str]) -> str:
    head = data[:16]
    if head.startswith(b"%PDF-"):
        return PDF
    # Some PDF writers put junk before the header; readers accept it within the first 1 KiB.
    if b"%PDF-" in data[:1024] and PDF in claims:
        return PDF
    if head.startswith(b"PK\x03\x04"):
        return _sniff_zip(data, claims=claims)
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith((b"GIF87a", b"GIF89a")):
        return GIF
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return TIFF
    if head.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return WEBP
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return _sniff_ole(data, claims=claims)
    if _is_bmp(data):
        return BMP
    return ""


def _sniff_zip(data: bytes, *, claims: list[str]) -> str:
    """Tell Word, Excel and PowerPoint packages apart by their part names."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
            macro_enabled = _declares_macros(archive) if "[Content_Types].xml" in names else False
    except (zipfile.BadZipFile, NotImplementedError, OSError, EOFError, ValueError):
        # A damaged package: keep a claimed Office type so its decoder reports the damage.
        office_claims = [claim for claim in claims if claim in (DOCX, XLSX, XLSM, PPTX)]
        return office_claims[0] if office_claims else ZIP

    if "[Content_Types].xml" not in names:
        return ZIP
    if any(name.startswith("word/") for name in names):
        return DOCX
    if any(name.startswith("xl/") for name in names):
        return XLSM if macro_enabled else XLSX
    if any(name.startswith("ppt/") for name in names):
        return PPTX
    return ZIP


def _declares_macros(archive: zipfile.ZipFile) -> bool:
    try:
        return b"macroEnabled" in archive.read("[Content_Types].xml")
    except (zipfile.BadZipFile, zlib.error, NotImplementedError, OSError, EOFError):
        # The decoder reports a damaged part list; the part names alone still give the type.
        return False


def _sniff_ole(data: bytes, *, claims: list[str]) -> str:
    """Name the legacy Office format of an OLE2 compound file from its stream names."""
    # Directory entries store stream names in UTF-16LE; a search avoids parsing the FAT.
    if "WordDocument".encode("utf-16-le") in data:
        return DOC
    if "Workbook".encode("utf-16-le") in data or "Book".encode("utf-16-le") in data:
        return XLS
    if "PowerPoint Document".encode("utf-16-le") in data:
        return PPT
    for claim in claims:
        if claim in (DOC, XLS, PPT):
            return claim
    return OLE_STORAGE


def is_encrypted_office_file(data: bytes) -> bool:
    """Tell whether an OLE2 file is a password-protected Word, Excel or PowerPoint file.

    Office encrypts a .docx, .xlsx or .pptx into an OLE2 file whose "EncryptedPackage" stream
    contains the package, so such a file no longer starts like a ZIP.
    """
    return "EncryptedPackage".encode("utf-16-le") in data


def _is_bmp(data: bytes) -> bool:
    if len(data) < 26 or not data.startswith(b"BM"):
        return False
    dib_header_size = int.from_bytes(data[14:18], "little")
    return dib_header_size in _BMP_DIB_HEADER_SIZES


def _looks_like_text(sample: bytes) -> bool:
    """Tell whether `sample` (the start of a file) is text in some encoding."""
    if not sample:
        return True
    if sample.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        return True
    if utf16_byte_order(sample):
        return True
    if b"\x00" in sample:
        return False

    try:
        sample.decode("utf-8")
        return True
    except UnicodeDecodeError as error:
        # A multi-byte character cut at the end of the sample is still UTF-8.
        if error.start >= len(sample) - 3 and error.reason == "unexpected end of data":
            return True

    # Legacy single-byte text (cp1252, latin-1) has printable high bytes but almost no control bytes.
    controls = sum(1 for byte in sample if byte < 32 and byte not in _TEXT_CONTROL_BYTES)
    return controls <= len(sample) // 100


def _sniff_text_type(data: bytes) -> str:
    """Pick HTML, JSON or plain text for text content that nothing else names."""
    head = decode_text(data[:1024]).lstrip().lower()
    if head.startswith(("<!doctype html", "<html")) or "<html" in head:
        return HTML

    if head[:1] in ("{", "[") and len(data) <= _MAX_JSON_SNIFF_BYTES:
        try:
            json.loads(data)
            return JSON
        except ValueError:
            return PLAIN_TEXT
    return PLAIN_TEXT

"""Decode text files whose encoding is not declared."""

from __future__ import annotations

import codecs

# Longest BOM first, because the UTF-32 LE BOM starts with the UTF-16 LE one.
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

# Share of invalid sequences among the non-ASCII characters below which a file still counts as UTF-8
# (a few damaged bytes), rather than as a legacy single-byte encoding.
_MAX_UTF8_ERROR_RATIO = 0.1


def detect_encoding(data: bytes) -> tuple[str, int]:
    """Return the encoding of `data` and the length of its byte order mark (0 without one).

    The checks run in this order. A BOM wins. Then BOM-less UTF-16 (zeros in
    every other byte), then UTF-8 when (almost) every byte sequence is valid.
    Else cp1252, the usual encoding of Western text written on Windows, and
    last latin-1, which decodes any byte.
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return encoding, len(bom)

    utf16 = utf16_byte_order(data[:4096])
    if utf16:
        return utf16, 0

    try:
        data.decode("utf-8")
        return "utf-8", 0
    except UnicodeDecodeError:
        pass
    if _mostly_utf8(data):
        return "utf-8", 0

    try:
        data.decode("cp1252")
        return "cp1252", 0
    except UnicodeDecodeError:
        return "latin-1", 0


def decode_text(data: bytes) -> str:
    """Decode `data` with its detected encoding, without the BOM."""
    encoding, bom_length = detect_encoding(data)
    # "replace" only matters for UTF-8 with a few damaged bytes and odd-length UTF-16.
    return data[bom_length:].decode(encoding, errors="replace")


def _mostly_utf8(data: bytes) -> bool:
    text = data.decode("utf-8", errors="replace")
    errors = text.count("\ufffd")
    non_ascii = len(text) - len(text.encode("ascii", errors="ignore")) - errors
    return non_ascii > 0 and errors <= non_ascii * _MAX_UTF8_ERROR_RATIO


def utf16_byte_order(sample: bytes) -> str:
    """Return "utf-16-le" or "utf-16-be" when `sample` is BOM-less UTF-16 of mostly Latin text, else ""."""
    if len(sample) < 4:
        return ""
    even = sample[0::2]
    odd = sample[1::2]
    even_zeros = even.count(0) / len(even)
    odd_zeros = odd.count(0) / len(odd)
    # Latin text in UTF-16 has a zero in every other byte; binary data has zeros scattered.
    if odd_zeros > 0.6 and even_zeros < 0.05:
        return "utf-16-le"
    if even_zeros > 0.6 and odd_zeros < 0.05:
        return "utf-16-be"
    return ""

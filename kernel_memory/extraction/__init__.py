"""Text extraction: turn a file's bytes into numbered sections of text.

    detect_mime_type(data, file_name=..., declared=...)  -> MIME type from signature, name, declared type
    is_supported(mime_type)                              -> whether a decoder or OCR reads it
    await extract_file(data, file_name=..., ocr=...)     -> ExtractedFile (decoding in a worker thread)
    extract_bytes(data, file_name=...)                   -> the same, synchronously, without OCR

Each format has its own decoder module, imported on first use, so importing
this package stays cheap.
"""

from __future__ import annotations

from kernel_memory.extraction.base import Decoder, OcrEngine
from kernel_memory.extraction.extractor import (
    NO_TEXT_LAYER,
    OCR_MIME_TYPES,
    OCR_NOT_CONFIGURED,
    SUPPORTED_MIME_TYPES,
    extract_bytes,
    extract_file,
    get_decoder,
    is_supported,
)
from kernel_memory.extraction.mime import (
    OCTET_STREAM,
    detect_mime_type,
    mime_type_from_name,
    normalize_mime_type,
)

__all__ = [
    "NO_TEXT_LAYER",
    "OCR_MIME_TYPES",
    "OCR_NOT_CONFIGURED",
    "OCTET_STREAM",
    "SUPPORTED_MIME_TYPES",
    "Decoder",
    "OcrEngine",
    "detect_mime_type",
    "extract_bytes",
    "extract_file",
    "get_decoder",
    "is_supported",
    "mime_type_from_name",
    "normalize_mime_type",
]

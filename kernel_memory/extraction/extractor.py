"""Choose the decoder for a file's type and run it; images and scanned PDFs go to OCR.

Decoders are imported on first use, so a process that reads only text never
loads pypdf, lxml or the Office libraries.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import logging
import time

from kernel_memory.errors import EmptyFileError, UnsupportedContentError
from kernel_memory.extraction import mime
from kernel_memory.extraction.base import Decoder, OcrEngine
from kernel_memory.models import ExtractedFile, Section

logger = logging.getLogger(__name__)

OCR_NOT_CONFIGURED = "OCR is not configured"
NO_TEXT_LAYER = "the PDF has no text layer (scanned pages?) and OCR is not configured"

# "module:class" inside this package, per MIME type.
_DECODERS: dict[str, str] = {
    mime.PLAIN_TEXT: "text:PlainTextDecoder",
    mime.MARKDOWN: "text:MarkdownDecoder",
    mime.JSON: "json_text:JsonDecoder",
    mime.CSV: "csv_text:CsvDecoder",
    mime.TSV: "csv_text:CsvDecoder",
    mime.HTML: "html:HtmlDecoder",
    mime.XHTML: "html:HtmlDecoder",
    mime.PDF: "pdf:PdfDecoder",
    mime.DOCX: "word:WordDecoder",
    mime.XLSX: "excel:ExcelDecoder",
    mime.XLSM: "excel:ExcelDecoder",
    mime.PPTX: "powerpoint:PowerPointDecoder",
}

# Image types sent to the OCR engine.
OCR_MIME_TYPES = frozenset({mime.PNG, mime.JPEG, mime.TIFF, mime.BMP, mime.GIF})

SUPPORTED_MIME_TYPES = frozenset(_DECODERS) | OCR_MIME_TYPES

_NEWER_FORMAT = {mime.DOC: ".docx", mime.XLS: ".xlsx", mime.PPT: ".pptx"}


def is_supported(mime_type: str) -> bool:
    """Tell whether a decoder or the OCR engine reads files of `mime_type`."""
    return mime.normalize_mime_type(mime_type) in SUPPORTED_MIME_TYPES


@functools.cache
def get_decoder(mime_type: str) -> Decoder:
    """Return the decoder for a supported, normalized `mime_type`, importing its module on first use."""
    module_name, class_name = _DECODERS[mime_type].split(":")
    module = importlib.import_module(f"{__package__}.{module_name}")
    decoder: Decoder = getattr(module, class_name)()
    return decoder


def extract_bytes(data: bytes, *, file_name: str, mime_type: str | None = None) -> ExtractedFile:
    """Extract the text of a file synchronously, detecting its type (`mime_type` is only a hint).

    Images need the OCR engine, which only `extract_file` calls, so here they
    come back without sections and with `skipped_reason` "OCR is not configured".
    Raises `EmptyFileError`, `UnsupportedContentError`, or `PermanentError` for a damaged file.
    """
    detected = _detect(data, file_name=file_name, declared=mime_type)
    if detected in OCR_MIME_TYPES:
        return ExtractedFile(mime_type=detected, skipped_reason=OCR_NOT_CONFIGURED)
    return _decode(data, file_name=file_name, mime_type=detected)


async def extract_file(
    data: bytes, *, file_name: str, mime_type: str | None = None, ocr: OcrEngine | None = None
) -> ExtractedFile:
    """Extract the text of a file, detecting its type (`mime_type` is only a hint).

    Decoding runs in a worker thread, so large PDFs do not block the event
    loop. Images, and PDFs without a text layer, go to `ocr` when given.
    Raises `EmptyFileError`, `UnsupportedContentError`, or `PermanentError` for a damaged file.
    """
    detected = _detect(data, file_name=file_name, declared=mime_type)
    if detected in OCR_MIME_TYPES:
        if ocr is None:
            logger.info("file %s: %s skipped: %s", file_name, detected, OCR_NOT_CONFIGURED)
            return ExtractedFile(mime_type=detected, skipped_reason=OCR_NOT_CONFIGURED)
        return await _read_with_ocr(ocr, data, file_name=file_name, mime_type=detected)

    extracted = await asyncio.to_thread(_decode, data, file_name=file_name, mime_type=detected)
    if extracted.skipped_reason == NO_TEXT_LAYER and ocr is not None:
        return await _read_with_ocr(ocr, data, file_name=file_name, mime_type=detected)
    return extracted


def _detect(data: bytes, *, file_name: str, declared: str | None) -> str:
    if not data:
        raise EmptyFileError(f"file is empty: {file_name}")
    detected = mime.detect_mime_type(data, file_name=file_name, declared=declared)
    if detected in mime.OLE_TYPES and mime.is_encrypted_office_file(data):
        raise UnsupportedContentError(
            f"unsupported file type: {file_name!r} is a password-protected Office file; "
            "remove the password in its application and upload it again"
        )
    if detected not in SUPPORTED_MIME_TYPES:
        raise UnsupportedContentError(_unsupported_message(file_name, detected))
    return detected


def _unsupported_message(file_name: str, detected: str) -> str:
    message = f"unsupported file type {detected!r} of file {file_name!r}"
    if detected in _NEWER_FORMAT:
        return f"{message}: legacy Office files are not read; save it as {_NEWER_FORMAT[detected]} and upload it again"
    return (
        f"{message}: upload PDF, Word (.docx), Excel (.xlsx), PowerPoint (.pptx), HTML, Markdown, "
        "JSON, CSV, plain text, or an image (PNG, JPEG, TIFF, BMP, GIF) with OCR configured"
    )


def _decode(data: bytes, *, file_name: str, mime_type: str) -> ExtractedFile:
    started = time.perf_counter()
    extracted = get_decoder(mime_type).decode(data, file_name=file_name)
    extracted.mime_type = mime_type
    extracted.sections = _non_blank(extracted.sections)
    if mime_type == mime.PDF and not extracted.sections:
        extracted.skipped_reason = NO_TEXT_LAYER

    logger.info(
        "file %s: extracted %s, %d sections, %d characters in %.2f s",
        file_name,
        mime_type,
        len(extracted.sections),
        sum(len(section.text) for section in extracted.sections),
        time.perf_counter() - started,
    )
    return extracted


async def _read_with_ocr(ocr: OcrEngine, data: bytes, *, file_name: str, mime_type: str) -> ExtractedFile:
    started = time.perf_counter()
    text = await ocr.read_image(data, mime_type=mime_type)
    sections = _non_blank([Section(number=1, text=text)])
    logger.info(
        "file %s: OCR read %s, %d characters in %.2f s",
        file_name,
        mime_type,
        len(text),
        time.perf_counter() - started,
    )
    return ExtractedFile(mime_type=mime_type, sections=sections)


def _non_blank(sections: list[Section]) -> list[Section]:
    """Drop blank sections, keeping the numbers of the others, and NUL characters, which are never text."""
    non_blank = []
    for section in sections:
        text = section.text.replace("\x00", "") if "\x00" in section.text else section.text
        if text.strip():
            non_blank.append(section if text is section.text else Section(number=section.number, text=text))
    return non_blank

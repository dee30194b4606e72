"""PDF: one section per page, numbered from 1 in file order (not by printed page labels)."""

from __future__ import annotations

import io
import logging
import re
import struct
import zlib
from typing import TYPE_CHECKING

from kernel_memory.errors import PermanentError
from kernel_memory.extraction import mime
from kernel_memory.extraction.pdf_fonts import add_missing_unicode_maps
from kernel_memory.models import ExtractedFile, Section

if TYPE_CHECKING:
    from pypdf import PdfReader

logger = logging.getLogger(__name__)

_LIGATURES = str.maketrans(
    {
        "\ufb00": "ff",
        "\ufb01": "fi",
        "\ufb02": "fl",
        "\ufb03": "ffi",
        "\ufb04": "ffl",
        "\ufb05": "st",
        "\ufb06": "st",
    }
)
# Control characters that PDF text extraction leaks, such as NUL from two-byte fonts; tab and newline stay.
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_TRAILING_SPACES = re.compile(r"[ \t]+\n")
_BLANK_LINE_RUNS = re.compile(r"\n{3,}")
# One CJK character alone on a line: pypdf reads vertical text one character per line.
_CJK_CHARACTER = re.compile(
    r"[\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]"
)
# Shortest run of such lines taken as a vertical column; shorter runs may be short horizontal lines.
_MIN_VERTICAL_RUN = 3


def _pdf_errors() -> tuple[type[BaseException], ...]:
    """Return the errors pypdf raises on damaged files.

    Besides its own, pypdf lets plain Python errors from broken structures through, and
    NotImplementedError for a stream filter whose name is damaged.
    """
    from pypdf.errors import PyPdfError

    return (
        PyPdfError,
        ValueError,
        KeyError,
        TypeError,
        IndexError,
        AttributeError,
        NotImplementedError,
        struct.error,
        zlib.error,
    )


class PdfDecoder:
    mime_types = frozenset({mime.PDF})

    def decode(self, data: bytes, *, file_name: str) -> ExtractedFile:
        reader = _open(data, file_name=file_name)
        errors = _pdf_errors()
        try:
            pages = reader.pages
            page_count = len(pages)
        except errors as error:
            raise _damaged(file_name, error) from error

        sections: list[Section] = []
        failed_pages: list[int] = []
        fonts_checked: dict[int, object] = {}
        for number in range(1, page_count + 1):
            try:
                page = pages[number - 1]
                add_missing_unicode_maps(page, file_name=file_name, page_number=number, done=fonts_checked)
                text = page.extract_text()
            except errors as error:
                # One damaged page must not cost the reader the other pages; the failure is logged.
                logger.warning(
                    "file %s: cannot extract text of page %d: %s: %s",
                    file_name,
                    number,
                    type(error).__name__,
                    error,
                )
                failed_pages.append(number)
                continue
            sections.append(Section(number=number, text=normalize_pdf_text(text)))

        if page_count and len(failed_pages) == page_count:
            raise PermanentError(
                f"cannot read PDF file {file_name!r}: text extraction failed on all {page_count} pages; "
                "the file is damaged: print it to a new PDF and upload that"
            )
        return ExtractedFile(mime_type=mime.PDF, sections=sections)


def _open(data: bytes, *, file_name: str) -> PdfReader:
    from pypdf import PasswordType, PdfReader
    from pypdf.errors import DependencyError

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
    except _pdf_errors() as error:
        raise _damaged(file_name, error) from error

    if reader.is_encrypted:
        # Many PDFs are encrypted only to restrict printing or copying, with an empty user password.
        try:
            result = reader.decrypt("")
        except DependencyError as error:
            raise PermanentError(
                f"cannot decrypt PDF file {file_name!r}: {error}; install the 'cryptography' package"
            ) from error
        except _pdf_errors() as error:
            raise _damaged(file_name, error) from error
        if result == PasswordType.NOT_DECRYPTED:
            raise PermanentError(
                f"cannot read PDF file {file_name!r}: it is protected by a password; "
                "remove the password and upload it again"
            )
    return reader


def _damaged(file_name: str, error: BaseException) -> PermanentError:
    return PermanentError(
        f"cannot read PDF file {file_name!r}: {type(error).__name__}: {error}; "
        "the file is damaged or is not a PDF: open it in a PDF viewer, save a new copy and upload that"
    )


def normalize_pdf_text(text: str) -> str:
    """Clean what PDF extraction leaves behind, without changing the words.

    Drops control characters, expands typographic ligatures (ﬁ to fi, so search
    finds the word), joins vertical CJK columns, removes trailing spaces and
    keeps at most one blank line.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n").replace("\v", "\n")
    text = _CONTROL_CHARACTERS.sub("", text.translate(_LIGATURES))
    text = _join_vertical_columns(text)
    text = _TRAILING_SPACES.sub("\n", text + "\n")
    return _BLANK_LINE_RUNS.sub("\n\n", text).strip("\n")


def _join_vertical_columns(text: str) -> str:
    """Join runs of one-character CJK lines back into the vertical columns they came from.

    pypdf (version 7) puts a space after each column's last character, which marks where a column ends.
    """
    output: list[str] = []
    run: list[str] = []

    def flush_run() -> None:
        if len(run) >= _MIN_VERTICAL_RUN:
            columns = "".join(run).split(" ")
            output.extend(column for column in columns if column)
        else:
            output.extend(character.rstrip() for character in run)
        run.clear()

    for line in text.split("\n"):
        if len(line.rstrip()) == 1 and _CJK_CHARACTER.fullmatch(line.rstrip()):
            # Keep one space after a column's last character as the column separator.
            run.append(line.rstrip() + (" " if line != line.rstrip() else ""))
        else:
            flush_run()
            output.append(line)
    flush_run()
    return "\n".join(output)

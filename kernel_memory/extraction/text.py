"""Plain text and Markdown: decoded, line endings unified, otherwise kept as written."""

from __future__ import annotations

from kernel_memory.extraction import mime
from kernel_memory.extraction.encoding import decode_text
from kernel_memory.models import ExtractedFile, Section


def normalize_newlines(text: str) -> str:
    """Turn Windows and old Mac line endings into "\\n"."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


class PlainTextDecoder:
    """Plain text: one section holding the whole file, special tokens and all."""

    mime_types = frozenset({mime.PLAIN_TEXT})

    def decode(self, data: bytes, *, file_name: str) -> ExtractedFile:
        text = normalize_newlines(decode_text(data))
        return ExtractedFile(mime_type=mime.PLAIN_TEXT, sections=[Section(number=1, text=text)])


class MarkdownDecoder:
    """Markdown is already the text format the chunker reads best, so it is kept as is."""

    mime_types = frozenset({mime.MARKDOWN})

    def decode(self, data: bytes, *, file_name: str) -> ExtractedFile:
        text = normalize_newlines(decode_text(data))
        return ExtractedFile(mime_type=mime.MARKDOWN, sections=[Section(number=1, text=text)])

"""Extraction port: turn a file's bytes into numbered sections of text."""

from __future__ import annotations

from typing import Protocol

from kernel_memory.models import ExtractedFile


class Decoder(Protocol):
    """Reads one family of formats; chosen by MIME type."""

    mime_types: frozenset[str]

    def decode(self, data: bytes, *, file_name: str) -> ExtractedFile:
        """Return the file's sections; raise `PermanentError` for a corrupt file."""
        ...


class OcrEngine(Protocol):
    """Reads text from an image; Document Intelligence is the Azure adapter."""

    async def read_image(self, data: bytes, *, mime_type: str) -> str:
        """Return the text in `data`.

        `mime_type` is an image type (PNG, JPEG, TIFF, BMP, GIF), or
        `application/pdf` for a PDF whose pages have no text layer (scans).
        """
        ...

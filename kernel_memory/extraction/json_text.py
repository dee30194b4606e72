"""JSON: re-indented with real characters instead of `\\uXXXX` escapes, so it reads as text."""

from __future__ import annotations

import json
import logging

from kernel_memory.extraction import mime
from kernel_memory.extraction.encoding import decode_text
from kernel_memory.extraction.text import normalize_newlines
from kernel_memory.models import ExtractedFile, Section

logger = logging.getLogger(__name__)


class JsonDecoder:
    mime_types = frozenset({mime.JSON})

    def decode(self, data: bytes, *, file_name: str) -> ExtractedFile:
        text = normalize_newlines(decode_text(data))
        try:
            value = json.loads(text)
        except ValueError as error:
            # JSON with comments (appsettings.json, tsconfig.json) is still worth indexing as written.
            logger.info("file %s is not strict JSON (%s); keeping its text as is", file_name, error)
        else:
            text = json.dumps(value, indent=2, ensure_ascii=False)
        return ExtractedFile(mime_type=mime.JSON, sections=[Section(number=1, text=text)])

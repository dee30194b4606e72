"""CSV and TSV: one line per record, in the same `| a |  | c |` form as spreadsheet rows."""

from __future__ import annotations

import csv
import io
import logging

from kernel_memory.extraction import mime
from kernel_memory.extraction.encoding import decode_text
from kernel_memory.extraction.tables import format_row
from kernel_memory.extraction.text import normalize_newlines
from kernel_memory.models import ExtractedFile, Section

logger = logging.getLogger(__name__)

_DELIMITERS = ",;\t|"
# Characters of the file that the delimiter guess looks at.
_SNIFF_CHARS = 16384


class CsvDecoder:
    mime_types = frozenset({mime.CSV, mime.TSV})

    def decode(self, data: bytes, *, file_name: str) -> ExtractedFile:
        text = decode_text(data)
        delimiter = _guess_delimiter(text)

        try:
            rows = [
                format_row(record)
                for record in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
                if any(field.strip() for field in record)
            ]
        except csv.Error as error:
            # A malformed record (a field over the csv module's size limit, a NUL) would drop the file;
            # the raw lines still carry the data.
            logger.warning(
                "file %s is not well-formed CSV (%s); keeping its lines as written", file_name, error
            )
            rows = [line for line in normalize_newlines(text).split("\n") if line.strip()]

        return ExtractedFile(mime_type=mime.CSV, sections=[Section(number=1, text="\n".join(rows))])


def _guess_delimiter(text: str) -> str:
    sample = text[:_SNIFF_CHARS]
    try:
        return csv.Sniffer().sniff(sample, delimiters=_DELIMITERS).delimiter
    except csv.Error:
        # The sniffer gives up on a single column or ragged rows; a tab in the header still marks TSV.
        first_line = sample.split("\n", 1)[0]
        return "\t" if "\t" in first_line else ","

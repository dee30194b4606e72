"""Excel (.xlsx, .xlsm): one section per worksheet, one `| a |  | c |` line per row.

Values are the ones Excel last calculated (the cached values in the file).
A formula cell without a cached value (a file written by a library, never
opened in Excel) shows its formula text instead, read from a second pass over
that sheet only. Numbers lose float noise (4, not 4.0), dates read as ISO
8601, and a blank cell stays an empty field so the columns line up with the
header. Empty rows are dropped, and an empty sheet adds no section.
"""

from __future__ import annotations

import io
import math
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from kernel_memory.extraction import mime
from kernel_memory.extraction.ooxml import check_package, translate_errors
from kernel_memory.extraction.tables import format_row
from kernel_memory.models import ExtractedFile, Section

if TYPE_CHECKING:
    from openpyxl.workbook.workbook import Workbook
    from openpyxl.worksheet._read_only import ReadOnlyWorksheet

# Integral floats below this print as integers; Excel keeps 15 significant digits, so larger ones
# would show digits the file never had.
_MAX_EXACT_INTEGER = 1e15


class ExcelDecoder:
    mime_types = frozenset({mime.XLSX, mime.XLSM})

    def decode(self, data: bytes, *, file_name: str) -> ExtractedFile:
        from openpyxl import load_workbook

        check_package(data, file_name=file_name, kind="Excel")
        sections: list[Section] = []
        with translate_errors(file_name=file_name, kind="Excel"):
            workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
            formulas: Workbook | None = None
            try:
                for number, sheet in enumerate(workbook.worksheets, start=1):
                    rows, uncached = _read_values(sheet)
                    if uncached:
                        if formulas is None:
                            formulas = load_workbook(io.BytesIO(data), read_only=True, data_only=False)
                        _fill_formula_text(formulas[sheet.title], rows, uncached)
                    lines = _render_rows(rows)
                    if lines:
                        text = f"Worksheet: {sheet.title}\n" + "\n".join(lines)
                        sections.append(Section(number=number, text=text))
            finally:
                workbook.close()
                if formulas is not None:
                    formulas.close()
        return ExtractedFile(mime_type=mime.XLSX, sections=sections)


def _read_values(sheet: ReadOnlyWorksheet) -> tuple[list[list[str]], set[tuple[int, int]]]:
    """Return the sheet's cells as text, and the (row, column) indexes of present cells without a value.

    Such a cell is either a formatted blank cell or a formula whose result the
    file does not cache. Only the second pass, which reads formulas, can tell.
    """
    from openpyxl.cell.read_only import EMPTY_CELL

    # Files from other tools often store a wrong dimension ("A1"), and a read-only sheet cuts rows
    # to the stored dimension. Without it, every cell is read.
    sheet.reset_dimensions()
    rows: list[list[str]] = []
    uncached: set[tuple[int, int]] = set()
    for row_index, row in enumerate(sheet.iter_rows()):
        values: list[str] = []
        for column_index, cell in enumerate(row):
            value = cell.value
            if value is None and cell is not EMPTY_CELL:
                uncached.add((row_index, column_index))
            values.append(format_value(value))
        rows.append(values)
    return rows, uncached


def _fill_formula_text(sheet: Any, rows: list[list[str]], uncached: set[tuple[int, int]]) -> None:
    """Put the formula text (`=B2*2`) into the uncached cells that hold a formula."""
    from openpyxl.worksheet.formula import ArrayFormula

    sheet.reset_dimensions()
    last_row = max(row_index for row_index, _ in uncached)
    for row_index, row in enumerate(sheet.iter_rows(values_only=True)):
        if row_index > last_row:
            break
        for column_index, value in enumerate(row):
            if (row_index, column_index) not in uncached:
                continue
            if isinstance(value, ArrayFormula):
                value = value.text
            if isinstance(value, str) and value.startswith("="):
                rows[row_index][column_index] = value


def _render_rows(rows: list[list[str]]) -> list[str]:
    """Format the non-empty rows, cut to the columns that hold any value."""
    filled = [row for row in rows if any(row)]
    if not filled:
        return []
    first = min(next(index for index, value in enumerate(row) if value) for row in filled)
    last = max(max(index for index, value in enumerate(row) if value) for row in filled)
    width = last + 1 - first
    lines = []
    for row in filled:
        cells = row[first : last + 1]
        cells.extend([""] * (width - len(cells)))
        lines.append(format_row(cells))
    return lines


def format_value(value: object) -> str:
    """Render a cell value as Excel shows it in a General-format cell, with ISO 8601 dates."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _format_float(value)
    if isinstance(value, datetime):
        if value.time() == time(0, 0):
            return value.date().isoformat()
        return value.isoformat(timespec="seconds" if value.microsecond == 0 else "milliseconds")
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return str(value)
    return str(value)


def _format_float(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    if value.is_integer() and abs(value) < _MAX_EXACT_INTEGER:
        return str(int(value))
    # 15 significant digits is Excel's own display precision, which drops binary noise such as 0.30000000000000004.
    return format(value, ".15g")

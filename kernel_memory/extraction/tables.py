"""Render table rows (spreadsheets, Word and PowerPoint tables, CSV) as text lines.

Every format renders a row the same way, `| a |  | c |`, so a blank cell
keeps its column and a reader (or a model) can line values up with the header.
"""

from __future__ import annotations

from collections.abc import Iterable


def format_cell(text: str) -> str:
    """Put a cell's text on one line and escape the column separator."""
    return " ".join(text.split()).replace("|", "\\|")


def format_row(cells: Iterable[str]) -> str:
    """Return one table row as `| a | b |`; an empty cell stays an empty field."""
    return "| " + " | ".join(format_cell(cell) for cell in cells) + " |"

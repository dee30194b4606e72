"""PowerPoint (.pptx): one section per visible slide, numbered as PowerPoint numbers the slides.

A section contains the title as a Markdown heading, then the text of every
shape in the slide's order (inside groups too), tables as `| a | b |`
lines, and the speaker notes. Hidden slides are left out, as PowerPoint
leaves them out of a show; footers, dates and slide numbers are noise and
are left out too.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from kernel_memory.extraction import mime
from kernel_memory.extraction.ooxml import check_package, translate_errors
from kernel_memory.extraction.tables import format_row
from kernel_memory.models import ExtractedFile, Section

if TYPE_CHECKING:
    from pptx.shapes.base import BaseShape
    from pptx.slide import Slide


class PowerPointDecoder:
    mime_types = frozenset({mime.PPTX})

    def decode(self, data: bytes, *, file_name: str) -> ExtractedFile:
        from pptx import Presentation

        check_package(data, file_name=file_name, kind="PowerPoint")
        sections: list[Section] = []
        with translate_errors(file_name=file_name, kind="PowerPoint"):
            presentation = Presentation(io.BytesIO(data))
            for number, slide in enumerate(presentation.slides, start=1):
                if slide._element.get("show") in ("0", "false"):
                    continue
                lines = _slide_lines(slide)
                if lines:
                    sections.append(Section(number=number, text="\n".join(lines)))
        return ExtractedFile(mime_type=mime.PPTX, sections=sections)


def _slide_lines(slide: Slide) -> list[str]:
    lines: list[str] = []
    title = slide.shapes.title
    title_id = title.shape_id if title is not None else None
    if title is not None and title.has_text_frame:
        title_text = " ".join(title.text_frame.text.split())
        if title_text:
            lines.append("# " + title_text)

    for shape in _iter_shapes(slide.shapes):
        if shape.shape_id == title_id or _is_page_furniture(shape):
            continue
        if shape.has_text_frame:
            lines.extend(_text_lines(shape.text_frame.text))
        if getattr(shape, "has_table", False):
            lines.extend(_table_lines(shape.table))

    if slide.has_notes_slide:
        notes_frame = slide.notes_slide.notes_text_frame
        notes = _text_lines(notes_frame.text) if notes_frame is not None else []
        if notes:
            lines.append("Notes:")
            lines.extend(notes)
    return lines


def _iter_shapes(shapes: Any) -> Iterator[BaseShape]:
    """Yield the shapes of a slide in order, with the members of groups in place of the groups."""
    from pptx.enum.shapes import MSO_SHAPE_TYPE

    # An explicit stack: groups may nest to any depth in a hostile file.
    stack = [iter(shapes)]
    while stack:
        shape = next(stack[-1], None)
        if shape is None:
            stack.pop()
        elif shape.shape_type == MSO_SHAPE_TYPE.GROUP:
            stack.append(iter(shape.shapes))
        else:
            yield shape


def _is_page_furniture(shape: BaseShape) -> bool:
    from pptx.enum.shapes import PP_PLACEHOLDER

    if not shape.is_placeholder:
        return False
    furniture = (
        PP_PLACEHOLDER.FOOTER,
        PP_PLACEHOLDER.DATE,
        PP_PLACEHOLDER.SLIDE_NUMBER,
        PP_PLACEHOLDER.HEADER,
    )
    return shape.placeholder_format.type in furniture


def _text_lines(text: str) -> list[str]:
    # python-pptx returns a line break inside a paragraph as a vertical tab.
    lines = (" ".join(line.split()) for line in text.replace("\v", "\n").split("\n"))
    return [line for line in lines if line]


def _table_lines(table: Any) -> list[str]:
    lines = []
    for row in table.rows:
        # A cell covered by a merge repeats nothing: its text is in the merge's first cell.
        cells = ["" if cell.is_spanned else cell.text for cell in row.cells]
        if any(cell.strip() for cell in cells):
            lines.append(format_row(cells))
    return lines

"""Word (.docx): paragraphs and tables in document order, one section per page.

Word stores no pages, but it marks where each page started when the file was
last saved (`w:lastRenderedPageBreak`). Sections follow those marks, so page
numbers match what the author saw. A file that Word never laid out (one made
by a library) splits at its explicit page breaks instead. Headings become Markdown
headings and list items "- " lines, which the Markdown chunker splits on.
Text boxes, headers, footers, footnotes and comments are left out, and so is
text deleted under tracked changes.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from kernel_memory.extraction import mime
from kernel_memory.extraction.ooxml import check_package, translate_errors
from kernel_memory.extraction.tables import format_row
from kernel_memory.models import ExtractedFile, Section

if TYPE_CHECKING:
    from lxml.etree import _Element

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_MC = "{http://schemas.openxmlformats.org/markup-compatibility/2006}"

P, TBL, TR, TC, SDT, SDT_CONTENT, CUSTOM_XML = (
    f"{_W}p",
    f"{_W}tbl",
    f"{_W}tr",
    f"{_W}tc",
    f"{_W}sdt",
    f"{_W}sdtContent",
    f"{_W}customXml",
)
T, TAB, BR, CR, NO_BREAK_HYPHEN = f"{_W}t", f"{_W}tab", f"{_W}br", f"{_W}cr", f"{_W}noBreakHyphen"
RENDERED_PAGE_BREAK = f"{_W}lastRenderedPageBreak"
VAL, TYPE = f"{_W}val", f"{_W}type"

# Inline elements whose subtree holds no visible body text: properties, deleted text, drawings
# (text boxes), embedded objects, and note references.
_SKIPPED_INLINE = frozenset(
    {
        f"{_W}pPr", f"{_W}rPr", f"{_W}del", f"{_W}moveFrom", f"{_W}drawing", f"{_W}pict",
        f"{_W}object", f"{_W}footnoteReference", f"{_W}endnoteReference", f"{_W}commentReference",
        f"{_MC}AlternateContent",
    }
)  # fmt: skip

_HEADING_NAME = re.compile(r"^heading\s*([1-9])$", re.IGNORECASE)


class _PageBreak:
    """Marker between the text pieces of a paragraph where a new page starts."""


_BREAK = _PageBreak()


class WordDecoder:
    mime_types = frozenset({mime.DOCX})

    def decode(self, data: bytes, *, file_name: str) -> ExtractedFile:
        check_package(data, file_name=file_name, kind="Word")
        with translate_errors(file_name=file_name, kind="Word"):
            body, styles = _load(data)
            pages = _Pages(styles, rendered_breaks=body.find(f".//{RENDERED_PAGE_BREAK}") is not None)
            pages.add_blocks(body)
        sections = [
            Section(number=number, text="\n".join(lines)) for number, lines in enumerate(pages.pages, 1)
        ]
        return ExtractedFile(mime_type=mime.DOCX, sections=sections)


def _load(data: bytes) -> tuple[_Element, _Styles]:
    """Return the document body and what its paragraph styles mean for headings and lists."""
    from docx.opc.constants import RELATIONSHIP_TYPE
    from docx.opc.package import OpcPackage
    from lxml import etree

    # The OPC layer accepts macro-enabled documents and templates, which `docx.Document` rejects.
    package = OpcPackage.open(io.BytesIO(data))
    main = package.main_document_part
    # resolve_entities=False: an uploaded file must not make the parser read local files (XXE).
    parser = etree.XMLParser(resolve_entities=False, huge_tree=True)
    document = etree.fromstring(main.blob, parser)
    body = document.find(f"{_W}body")
    if body is None:
        raise ValueError("the main document part has no w:body element")

    styles_xml = None
    for relationship in main.rels.values():
        if relationship.reltype == RELATIONSHIP_TYPE.STYLES and not relationship.is_external:
            styles_xml = relationship.target_part.blob
    styles = _Styles.parse(etree.fromstring(styles_xml, parser)) if styles_xml else _Styles({}, frozenset())
    return body, styles


class _Styles:
    """Heading levels and list membership of paragraph styles, by style id, with base styles resolved."""

    def __init__(self, heading_levels: dict[str, int], list_styles: frozenset[str]) -> None:
        self.heading_levels = heading_levels
        self.list_styles = list_styles

    @classmethod
    def parse(cls, styles: _Element) -> _Styles:
        own_levels: dict[str, int] = {}
        own_lists: set[str] = set()
        based_on: dict[str, str] = {}
        for style in styles.iter(f"{_W}style"):
            if style.get(TYPE) != "paragraph":
                continue
            style_id = style.get(f"{_W}styleId") or ""
            name_element = style.find(f"{_W}name")
            name = (name_element.get(VAL) or "") if name_element is not None else ""
            properties = style.find(f"{_W}pPr")
            level = _level_from_name(name) or _outline_level(properties)
            if level:
                own_levels[style_id] = level
            numbering = properties.find(f"{_W}numPr") if properties is not None else None
            if numbering is not None and _numbering_id(numbering) != "0":
                own_lists.add(style_id)
            base = style.find(f"{_W}basedOn")
            if base is not None and base.get(VAL):
                based_on[style_id] = base.get(VAL) or ""

        levels: dict[str, int] = {}
        lists: set[str] = set()
        for style_id in set(own_levels) | own_lists | set(based_on):
            # Follow the basedOn chain to the first style that sets a level or numbering; cycles end it.
            current, seen = style_id, set()
            while current and current not in seen:
                seen.add(current)
                if current in own_levels:
                    levels[style_id] = own_levels[current]
                    break
                if current in own_lists:
                    lists.add(style_id)
                    break
                current = based_on.get(current, "")
        return cls(levels, frozenset(lists))


def _numbering_id(numbering: _Element) -> str:
    """Return the numbering id of a `w:numPr`; "0" means the paragraph is taken out of its list."""
    number_id = numbering.find(f"{_W}numId")
    return (number_id.get(VAL) or "") if number_id is not None else ""


def _level_from_name(name: str) -> int:
    if name.lower() == "title":
        return 1
    match = _HEADING_NAME.match(name.strip())
    return int(match.group(1)) if match else 0


def _outline_level(paragraph_properties: _Element | None) -> int:
    """Return 1-9 for a paragraph Word shows in its navigation pane, else 0 (body text has level 9 or none)."""
    if paragraph_properties is None:
        return 0
    outline = paragraph_properties.find(f"{_W}outlineLvl")
    if outline is None:
        return 0
    try:
        level = int(outline.get(VAL) or "9")
    except ValueError:
        return 0
    return level + 1 if 0 <= level < 9 else 0


class _Pages:
    """Collects lines into pages while walking the body."""

    def __init__(self, styles: _Styles, *, rendered_breaks: bool) -> None:
        self.styles = styles
        # Follow Word's layout marks when the file has them; else the explicit page breaks.
        self.rendered_breaks = rendered_breaks
        self.pages: list[list[str]] = [[]]

    def new_page(self) -> None:
        self.pages.append([])

    def add_blocks(self, container: _Element) -> None:
        for element in container:
            tag = element.tag
            if tag == P:
                self.add_paragraph(element)
            elif tag == TBL:
                self.add_table(element)
            elif tag in (SDT, CUSTOM_XML):
                content = element.find(SDT_CONTENT) if tag == SDT else element
                if content is not None:
                    self.add_blocks(content)

    def add_paragraph(self, paragraph: _Element) -> None:
        marker = self._marker(paragraph)
        for index, piece in enumerate(self._split_pages(paragraph)):
            if index > 0:
                self.new_page()
            for line in piece.split("\n"):
                line = line.strip()
                if line:
                    self.pages[-1].append(marker + line)
                    # Only the first line of a heading or list item gets the marker.
                    marker = ""

    def add_table(self, table: _Element) -> None:
        for row in _children(table, TR):
            cells: list[str] = []
            starts_page = False
            for cell in _children(row, TC):
                properties = cell.find(f"{_W}tcPr")
                if _continues_vertical_merge(properties):
                    cells.append("")
                else:
                    cell_pages = _Pages(self.styles, rendered_breaks=self.rendered_breaks)
                    cell_pages.add_blocks(cell)
                    starts_page = starts_page or len(cell_pages.pages) > 1
                    cells.append(" ".join(line for page in cell_pages.pages for line in page))
                cells.extend([""] * (_grid_span(properties) - 1))

            # A row that crosses a page boundary is counted on the page where it ends.
            if starts_page:
                self.new_page()
            if len(cells) == 1:
                if cells[0]:
                    self.pages[-1].append(cells[0])
            elif any(cells):
                self.pages[-1].append(format_row(cells))

    def _marker(self, paragraph: _Element) -> str:
        properties = paragraph.find(f"{_W}pPr")
        if properties is None:
            return ""
        style = properties.find(f"{_W}pStyle")
        style_id = (style.get(VAL) or "") if style is not None else ""
        level = _outline_level(properties) or self.styles.heading_levels.get(style_id, 0)
        if level:
            return "#" * level + " "
        numbering = properties.find(f"{_W}numPr")
        if numbering is None and style_id in self.styles.list_styles:
            return "- "
        if numbering is not None and _numbering_id(numbering) != "0":
            return "- "
        return ""

    def _split_pages(self, paragraph: _Element) -> list[str]:
        """Return the paragraph's text, one piece per page it spans."""
        pieces: list[list[str]] = [[]]
        for item in _inline_text(paragraph, rendered_breaks=self.rendered_breaks):
            if item is _BREAK:
                pieces.append([])
            else:
                assert isinstance(item, str)
                pieces[-1].append(item)
        return ["".join(piece) for piece in pieces]


def _inline_text(paragraph: _Element, *, rendered_breaks: bool) -> Iterator[str | _PageBreak]:
    """Yield a paragraph's text pieces in order, and `_BREAK` where a page starts."""
    # An explicit stack of child iterators: runs nest inside hyperlinks, fields, smart tags and
    # content controls to any depth.
    iterators = [iter(paragraph)]
    while iterators:
        element = next(iterators[-1], None)
        if element is None:
            iterators.pop()
            continue

        tag = element.tag
        if tag == T:
            yield element.text or ""
        elif tag == TAB:
            yield "\t"
        elif tag in (BR, CR):
            kind = element.get(TYPE)
            if kind == "page":
                if not rendered_breaks:
                    yield _BREAK
            elif kind == "column":
                yield " "
            else:
                yield "\n"
        elif tag == RENDERED_PAGE_BREAK:
            if rendered_breaks:
                yield _BREAK
        elif tag == NO_BREAK_HYPHEN:
            yield "-"
        elif isinstance(tag, str) and tag not in _SKIPPED_INLINE:
            iterators.append(iter(element))


def _children(element: _Element, tag: str) -> Iterator[_Element]:
    """Yield the children of `element` named `tag`, looking through content controls and custom XML."""
    for child in element:
        if child.tag == tag:
            yield child
        elif child.tag == SDT:
            content = child.find(SDT_CONTENT)
            if content is not None:
                yield from _children(content, tag)
        elif child.tag == CUSTOM_XML:
            yield from _children(child, tag)


def _grid_span(cell_properties: _Element | None) -> int:
    if cell_properties is None:
        return 1
    span = cell_properties.find(f"{_W}gridSpan")
    try:
        # Word allows at most 63 columns; the cap keeps a hostile value from padding a row forever.
        return min(max(int(span.get(VAL) or "1"), 1), 63) if span is not None else 1
    except ValueError:
        return 1


def _continues_vertical_merge(cell_properties: _Element | None) -> bool:
    """Tell whether a cell continues a vertical merge, so its text is the merged cell's above."""
    if cell_properties is None:
        return False
    merge = cell_properties.find(f"{_W}vMerge")
    return merge is not None and merge.get(VAL, "continue") == "continue"

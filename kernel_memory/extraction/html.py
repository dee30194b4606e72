"""HTML: the visible text, one line per block element, headings and list items marked as in Markdown.

Scripts, styles, templates, SVG and hidden elements are dropped. Navigation
is kept, because a menu item is sometimes the only place a page names itself.
Whitespace inside a line collapses to single spaces, except inside `<pre>`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from kernel_memory.extraction import mime
from kernel_memory.extraction.tables import format_row
from kernel_memory.models import ExtractedFile, Section

if TYPE_CHECKING:
    from bs4.element import PageElement, Tag

# Elements whose content is never visible text.
_DROPPED = frozenset(
    {
        "script",
        "style",
        "noscript",
        "template",
        "head",
        "svg",
        "iframe",
        "object",
        "embed",
        "canvas",
        "select",
    }
)
# Elements that start and end a line of text.
_BLOCKS = frozenset(
    {
        "address", "article", "aside", "blockquote", "body", "caption", "center", "dd", "details",
        "dialog", "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2",
        "h3", "h4", "h5", "h6", "header", "hgroup", "hr", "html", "legend", "li", "main", "menu", "nav",
        "ol", "p", "section", "summary", "ul", "br", "title", "tr", "td", "th", "option",
    }
)  # fmt: skip
_HEADING_LEVELS = {f"h{level}": level for level in range(1, 7)}
_DISPLAY_NONE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.IGNORECASE)


class HtmlDecoder:
    mime_types = frozenset({mime.HTML, mime.XHTML})

    def decode(self, data: bytes, *, file_name: str) -> ExtractedFile:
        from bs4 import BeautifulSoup

        # Bytes, not str, so the parser honours the page's own `<meta charset>`.
        soup = BeautifulSoup(data, "lxml")
        lines: list[str] = []
        title = soup.title.get_text(" ", strip=True) if soup.title else ""
        if title:
            lines.append(" ".join(title.split()))
        lines.extend(_render_lines(soup))
        return ExtractedFile(mime_type=mime.HTML, sections=[Section(number=1, text="\n".join(lines))])


def _render_lines(root: Tag) -> list[str]:
    """Return the visible text under `root`, one block per line."""
    from bs4.element import NavigableString, PreformattedString, Tag

    lines: list[str] = []
    buffer: list[str] = []
    # Markdown marker ("## ", "- ") waiting for the next line, and the element that set it.
    prefix: list[tuple[str, Tag]] = []

    def flush() -> None:
        text = " ".join("".join(buffer).split())
        buffer.clear()
        if text:
            marker = prefix.pop()[0] if prefix else ""
            lines.append(marker + text)

    # Iterative walk: deeply nested pages must not hit Python's recursion limit.
    # An entry is a node to visit, or ("end", tag) to close a block after its children.
    stack: list[PageElement | tuple[str, Tag]] = [root]
    while stack:
        node = stack.pop()

        if isinstance(node, tuple):
            tag = node[1]
            flush()
            if prefix and prefix[-1][1] is tag:
                prefix.pop()
            continue

        if isinstance(node, NavigableString):
            if not isinstance(node, PreformattedString):
                buffer.append(str(node))
            continue

        if not isinstance(node, Tag) or _is_hidden(node):
            continue

        name = node.name
        if name == "pre":
            flush()
            lines.extend(_preformatted_lines(node.get_text()))
            continue
        if name == "table":
            flush()
            lines.extend(_table_lines(node))
            continue
        if name in _BLOCKS:
            flush()
            if name in _HEADING_LEVELS:
                prefix.append(("#" * _HEADING_LEVELS[name] + " ", node))
            elif name == "li":
                prefix.append(("- ", node))
            stack.append(("end", node))

        stack.extend(reversed(node.contents))

    flush()
    return lines


def _is_hidden(tag: Tag) -> bool:
    if tag.name in _DROPPED:
        return True
    if tag.has_attr("hidden") or tag.get("aria-hidden") == "true":
        return True
    style = tag.get("style")
    return isinstance(style, str) and bool(_DISPLAY_NONE.search(style))


def _preformatted_lines(text: str) -> list[str]:
    lines = [line.rstrip() for line in text.split("\n")]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _table_lines(table: Tag) -> list[str]:
    """Render a table's rows as `| a | b |`; a one-column (layout) table as plain lines."""
    from bs4.element import Tag

    lines: list[str] = []
    for caption in table.find_all("caption", recursive=False):
        assert isinstance(caption, Tag)
        lines.extend(_render_lines(caption))

    for row in _own_rows(table):
        cells: list[str] = []
        for cell in row.find_all(["td", "th"], recursive=False):
            assert isinstance(cell, Tag)
            cells.append(" ".join(_render_lines(cell)))
            cells.extend([""] * (_colspan(cell) - 1))
        if len(cells) == 1:
            lines.extend(_render_lines(row))
        elif any(cell.strip() for cell in cells):
            lines.append(format_row(cells))
    return lines


def _own_rows(table: Tag) -> Iterator[Tag]:
    """Yield the rows of `table` itself, directly or in thead/tbody/tfoot, not those of nested tables."""
    from bs4.element import Tag

    for child in table.children:
        if not isinstance(child, Tag):
            continue
        if child.name == "tr":
            yield child
        elif child.name in ("thead", "tbody", "tfoot"):
            yield from (row for row in child.find_all("tr", recursive=False) if isinstance(row, Tag))


def _colspan(cell: Tag) -> int:
    value = cell.get("colspan")
    try:
        # Browsers cap colspan at 1000; the cap keeps a hostile value from padding a row forever.
        return min(max(int(str(value)), 1), 1000) if value is not None else 1
    except ValueError:
        return 1

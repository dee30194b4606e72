"""Give pypdf the character map of embedded symbolic TrueType fonts that lack one.

Ghostscript's PDF writer (web pages printed to PDF from Firefox, for one)
embeds subset TrueType fonts flagged symbolic, with neither an `/Encoding`
nor a `/ToUnicode` map. The PDF specification then specifies that the codes select glyphs
through the font's own `cmap` table (9.6.6.4 in ISO 32000-1), which pypdf does
not read: it decodes the codes as Latin-1, so "first" comes out as "Þrst" and
"NASA's" as "NASAÕs". This module reads each such font's `cmap` and glyph
names with fontTools and adds an in-memory `/ToUnicode` map before pypdf
extracts the text. Codes whose glyph has no standard name keep their Latin-1
reading, as pypdf would decode them without the map.
"""

from __future__ import annotations

import io
import logging
import struct
from typing import Any

logger = logging.getLogger(__name__)

# Font descriptor flag bit 3: the font uses a symbol set outside the standard Latin character set.
_SYMBOLIC_FLAG = 4
# The (3, 0) Windows symbol cmap maps a code c at U+F000 + c.
_SYMBOL_CMAP_OFFSET = 0xF000
# The CMap syntax allows at most 100 entries per beginbfchar block.
_MAX_BFCHAR_ENTRIES = 100


def add_missing_unicode_maps(page: Any, *, file_name: str, page_number: int, done: dict[int, Any]) -> None:
    """Add a `/ToUnicode` map to each symbolic TrueType font of `page` that needs one.

    `done` maps the ids of font objects already handled to the objects, because
    pages share fonts. Holding the objects keeps their ids from being reused.
    """
    for font in _page_fonts(page):
        key = id(font)
        if key in done:
            continue
        done[key] = font
        if not _needs_unicode_map(font):
            continue

        code_points = _code_points(font, file_name=file_name, page_number=page_number)
        if code_points:
            _attach_unicode_map(font, code_points)


def _page_fonts(page: Any) -> list[Any]:
    """Return the font dictionaries of a page, including those of its form XObjects."""
    from pypdf.generic import DictionaryObject

    fonts: list[Any] = []
    seen_resources: set[int] = set()
    pending = [page.get("/Resources")]
    while pending:
        resources = pending.pop()
        resources = resources.get_object() if resources is not None else None
        if not isinstance(resources, DictionaryObject) or id(resources) in seen_resources:
            continue
        seen_resources.add(id(resources))

        font_dictionary = resources.get("/Font")
        font_dictionary = font_dictionary.get_object() if font_dictionary is not None else None
        if isinstance(font_dictionary, DictionaryObject):
            fonts.extend(font.get_object() for font in font_dictionary.values())

        xobjects = resources.get("/XObject")
        xobjects = xobjects.get_object() if xobjects is not None else None
        if isinstance(xobjects, DictionaryObject):
            for xobject in xobjects.values():
                xobject = xobject.get_object()
                if isinstance(xobject, DictionaryObject) and xobject.get("/Subtype") == "/Form":
                    pending.append(xobject.get("/Resources"))
    return fonts


def _needs_unicode_map(font: Any) -> bool:
    from pypdf.generic import DictionaryObject

    if not isinstance(font, DictionaryObject) or font.get("/Subtype") != "/TrueType":
        return False
    if "/ToUnicode" in font or "/Encoding" in font:
        return False
    descriptor = font.get("/FontDescriptor")
    descriptor = descriptor.get_object() if descriptor is not None else None
    if not isinstance(descriptor, DictionaryObject) or "/FontFile2" not in descriptor:
        return False
    return bool(int(descriptor.get("/Flags", 0)) & _SYMBOLIC_FLAG)


def _code_points(font: Any, *, file_name: str, page_number: int) -> dict[int, str]:
    """Map the font's one-byte codes to text through its embedded `cmap` and glyph names."""
    from fontTools.agl import toUnicode
    from fontTools.ttLib import TTFont, TTLibError

    # Subset fonts often carry small defects (padding after the glyph names) that fontTools reads
    # past with a warning per font, and a user cannot act on those warnings.
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    descriptor = font["/FontDescriptor"].get_object()
    try:
        program = TTFont(io.BytesIO(descriptor["/FontFile2"].get_object().get_data()), lazy=True)
        windows_symbol = program["cmap"].getcmap(3, 0)
        macintosh = program["cmap"].getcmap(1, 0)
        code_points: dict[int, str] = {}
        for code in range(256):
            glyph = None
            if windows_symbol is not None:
                glyph = windows_symbol.cmap.get(_SYMBOL_CMAP_OFFSET + code)
            if glyph is None and macintosh is not None:
                glyph = macintosh.cmap.get(code)
            if glyph is None:
                continue
            # A glyph without a standard name ("glyph12") keeps the Latin-1 reading pypdf would give it.
            code_points[code] = toUnicode(glyph) or chr(code)
        return code_points
    except (TTLibError, KeyError, ValueError, struct.error, AssertionError) as error:
        # A damaged font program costs only the special characters: pypdf still reads ASCII codes.
        logger.info(
            "file %s, page %d: cannot read embedded font %s: %s: %s",
            file_name,
            page_number,
            font.get("/BaseFont"),
            type(error).__name__,
            error,
        )
        return {}


def _attach_unicode_map(font: Any, code_points: dict[int, str]) -> None:
    from pypdf.generic import DecodedStreamObject, NameObject

    entries = [
        f"<{code:02X}> <{text.encode('utf-16-be').hex().upper()}>"
        for code, text in sorted(code_points.items())
    ]
    blocks = []
    for start in range(0, len(entries), _MAX_BFCHAR_ENTRIES):
        chunk = entries[start : start + _MAX_BFCHAR_ENTRIES]
        blocks.append(f"{len(chunk)} beginbfchar\n" + "\n".join(chunk) + "\nendbfchar")
    cmap = (
        "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n"
        "/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n"
        "1 begincodespacerange\n<00> <FF>\nendcodespacerange\n"
        + "\n".join(blocks)
        + "\nendcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n"
    )
    stream = DecodedStreamObject()
    stream.set_data(cmap.encode("ascii"))
    font[NameObject("/ToUnicode")] = stream

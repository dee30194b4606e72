"""Cut positions in text: boundary levels, from markdown headings down to words, and exact-count cuts.

A cut is a character offset `p`: the left part is `text[:p]`, the right part
`text[p:]`. Cuts at whitespace keep the whitespace with the token it belongs
to. A paragraph or line break ends the left part, because the cut is after the
last newline. The space before a word starts the right part, because tiktoken
encodes " word" as one piece, so a chunk cut inside a paragraph may begin with
a space.
"""

from __future__ import annotations

import bisect
import re
from enum import IntEnum


class Level(IntEnum):
    """Cut quality, from a cut between words up to a cut before a markdown heading; higher is better."""

    WORD = 1
    CLAUSE = 2
    SENTENCE = 3
    LINE = 4
    PARAGRAPH = 5
    HEADING = 6


# A blank line: the cut is after the last newline of the run.
_PARAGRAPH = re.compile(r"\n[^\S\n]*\n(?:[^\S\n]*\n)*")
# Any newline followed by more text on a later line: the cut is after the newline.
_NEWLINE = re.compile(r"\n(?=[^\S\r\n]*\S)")
# A markdown ATX heading at the start of a line: up to 3 spaces of indent, then 1 to 6 '#'.
# The cut is after the newline, which the pattern matches so that the regex engine can skip ahead fast.
_HEADING = re.compile(r"\n(?=[ ]{0,3}#{1,6}(?:[ \t]|\r?\n|$))")
# A fence line of a markdown code block: ``` or ~~~, up to 3 spaces of indent.
_FENCE = re.compile(r"^[ ]{0,3}(`{3,}|~{3,})", re.MULTILINE)
# End of a sentence in space-separated scripts: the cut is before the space,
# and the next word must not start with a lowercase ASCII letter (skips "e.g. foo").
_SENTENCE_SPACED = re.compile(
    r"""[.!?\u2026\u203d\u0964\u061f\u06d4]+["'\u201d\u2019\u00bb)\]]*(?=[ \t]+(?![a-z])\S)"""
)
# End of a sentence in scripts written without spaces (CJK): the cut is after the mark.
_SENTENCE_UNSPACED = re.compile(r"[\u3002\uff01\uff1f\uff61\uff0e]+[\u300d\u300f\u201d\u2019\uff09)]*(?=\S)")
_CLAUSE_SPACED = re.compile(r"""[,;:)\]}\u2014\u2013\u060c\u061b]["'\u201d\u2019]*(?=[ \t]+\S)""")
_CLAUSE_UNSPACED = re.compile(r"[\uff0c\u3001\uff1b\uff1a](?=\S)")
# The last space or tab before a word: the cut is before it.
_WORD_SPACE = re.compile(r"[ \t](?=\S)")
_HORIZONTAL_SPACE_RUN = re.compile(r"[^\S\r\n]*")
# Characters scanned beyond a range so that lookaheads and runs ending at its edges still match.
_LOOKAHEAD_CHARS = 8

# A line break counts as a real line end (LINE) unless it looks like a hard wrap
# inside a sentence, as PDF text extraction leaves them (see _is_wrap). A wrap
# counts as a WORD cut.
_LINE_FINAL_PUNCTUATION = frozenset(".!?:;\u2026\u3002\uff01\uff1f\"'\u201d\u2019)]}|*`")
# A line at least this long that ends without punctuation is taken for a layout wrap, not a title.
_WRAPPED_LINE_CHARS = 40
_ASCII_PUNCTUATION = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")


def is_exact_cut(text: str, position: int) -> bool:
    """Tell whether cutting `text` at `position` keeps tiktoken's tokens unchanged on both sides.

    True means `encode(text[:p]) + encode(text[p:]) == encode(text)` for the
    cl100k_base and o200k_base patterns, so token counts of slices that start
    and end at such cuts add up exactly. False means "not proven": the counts
    may still add up, but the caller must re-count. The two rules below follow
    from the patterns: a piece never crosses the last newline of a whitespace
    run that ends in text, and " word" or " (" always starts a piece.
    """
    length = len(text)
    if position <= 0 or position >= length:
        return True

    char = text[position]
    if char == " " or char == "\t":
        following = text[position + 1] if position + 1 < length else ""
        if following.isalpha():
            return True
        if char == " " and following in _ASCII_PUNCTUATION and following != "":
            return True

    if text[position - 1] in "\r\n":
        # Python's whitespace is a superset of the patterns' \s, so a run that
        # looks newline-free here is newline-free for tiktoken too.
        run_end = _HORIZONTAL_SPACE_RUN.match(text, position).end()
        if run_end < length:
            after = text[run_end]
            # o200k keeps "/" after a newline in the same piece as the newline.
            return not after.isspace() and after != "/"
    return False


def fenced_blocks(text: str) -> list[tuple[int, int]]:
    """Find markdown fenced code blocks as (start, end) offsets: start of the opening fence line, end of the closing one.

    A block that is never closed runs to the end of the text, as CommonMark reads it.
    """
    blocks: list[tuple[int, int]] = []
    opening: re.Match[str] | None = None
    for match in _FENCE.finditer(text):
        if opening is None:
            opening = match
            continue
        fence = match.group(1)
        line_end = text.find("\n", match.end())
        line_end = len(text) if line_end == -1 else line_end
        # A closing fence uses the opening character, at least as many times, and nothing else on its line.
        closes = fence[0] == opening.group(1)[0] and len(fence) >= len(opening.group(1))
        if closes and not text[match.end() : line_end].strip():
            blocks.append((opening.start(), min(len(text), line_end + 1)))
            opening = None
    if opening is not None:
        blocks.append((opening.start(), len(text)))
    return blocks


class BoundaryFinder:
    """Finder of the cuts of each level inside a range of one text, optionally read as markdown."""

    def __init__(self, text: str, *, markdown: bool) -> None:
        self.text = text
        self.markdown = markdown
        self._blocks = fenced_blocks(text) if markdown else []
        self._block_starts = [start for start, _ in self._blocks]
        # Blocks never overlap, so their ends are sorted too.
        self._block_ends = [end for _, end in self._blocks]

    def block_at(self, position: int) -> int:
        """Return the index of the fenced block with `position` strictly inside it, or -1."""
        index = bisect.bisect_right(self._block_starts, position) - 1
        if index >= 0:
            start, end = self._blocks[index]
            if start < position < end:
                return index
        return -1

    def next_block(self, position: int) -> int:
        """Return the index of the first fenced block starting at or after `position`, or -1."""
        index = bisect.bisect_left(self._block_starts, position)
        return index if index < len(self._blocks) else -1

    def block_bounds(self, index: int) -> tuple[int, int]:
        return self._blocks[index]

    def last_cut(self, level: Level, low: int, high: int, *, allowed_block: int = -1) -> int | None:
        """Return the last cut of `level` in [low, high], skipping cuts inside fenced blocks except `allowed_block`."""
        if low > high:
            return None
        for position in reversed(self._cuts(level, low, high)):
            if position > high:
                continue
            if position < low:
                return None
            if self._allowed(position, allowed_block) and not (
                level is Level.LINE and self._is_wrap(position)
            ):
                return position
        return None

    def first_start(self, level: Level, low: int, high: int) -> int | None:
        """Return the first cut of `level` in [low, high]: where an overlap may begin (LINE and finer levels)."""
        if low > high:
            return None
        text = self.text
        scan_end = min(len(text), high + _LOOKAHEAD_CHARS)
        best: int | None = None
        for pattern, cut_after in _FIRST_START_PATTERNS[level]:
            # A match ending at or after `low` may begin a little before it.
            scan = max(0, low - _LOOKAHEAD_CHARS) if cut_after else low
            while (match := pattern.search(text, scan, scan_end)) is not None:
                position = match.end() if cut_after else match.start()
                scan = match.end()
                if position < low:
                    continue
                if position > high or (best is not None and position >= best):
                    break
                if level is Level.LINE and self._is_wrap(position):
                    continue
                best = position
                break
        return best

    def _allowed(self, position: int, allowed_block: int) -> bool:
        if not self._blocks:
            return True
        block = self.block_at(position)
        return block == -1 or block == allowed_block

    def _cuts(self, level: Level, low: int, high: int) -> list[int]:
        """Return the cuts of `level` near [low, high], sorted; the caller drops those outside."""
        text = self.text
        # Patterns look ahead a few characters past the cut, so scan a little beyond `high`.
        scan_end = min(len(text), high + _LOOKAHEAD_CHARS)
        scan_start = max(0, low - _LOOKAHEAD_CHARS)

        if level is Level.HEADING:
            if not self.markdown:
                return []
            # A '#' line inside a code block is a comment, not a heading.
            headings = _HEADING.finditer(text, scan_start, scan_end)
            return [m.end() for m in headings if self.block_at(m.end()) == -1]

        if level is Level.PARAGRAPH:
            # No lookahead here, so stop at `high`: a blank run longer than the window still yields a cut.
            cuts = [m.end() for m in _PARAGRAPH.finditer(text, scan_start, min(len(text), high))]
            if self._blocks:
                cuts.extend(self._block_edges(low, high))
                cuts.sort()
            return cuts

        if level is Level.LINE:
            # Hard wraps are filtered out by the callers, only for the cuts they look at.
            return [m.end() for m in _NEWLINE.finditer(text, scan_start, scan_end)]
        if level is Level.SENTENCE:
            return _merged(_SENTENCE_SPACED, _SENTENCE_UNSPACED, text, scan_start, scan_end)
        if level is Level.CLAUSE:
            return _merged(_CLAUSE_SPACED, _CLAUSE_UNSPACED, text, scan_start, scan_end)

        words = [m.start() for m in _WORD_SPACE.finditer(text, scan_start, scan_end)]
        lines = [m.end() for m in _NEWLINE.finditer(text, scan_start, scan_end)]
        return sorted(words + lines) if lines else words

    def _block_edges(self, low: int, high: int) -> list[int]:
        """Return the fenced block starts and ends in [low, high], which end paragraphs too."""
        first_start = bisect.bisect_left(self._block_starts, low)
        last_start = bisect.bisect_right(self._block_starts, high)
        first_end = bisect.bisect_left(self._block_ends, low)
        last_end = bisect.bisect_right(self._block_ends, high)
        return self._block_starts[first_start:last_start] + self._block_ends[first_end:last_end]

    def _is_wrap(self, line_start: int) -> bool:
        """Tell whether the newline ending just before `line_start` is a hard wrap inside a sentence.

        PDF text extraction breaks lines where the page layout did, so a long
        line that stops without punctuation, or a line followed by one starting
        in lowercase, is read as one sentence going on.
        """
        text = self.text
        if self._blocks and self.block_at(line_start) != -1:
            # Code is never wrapped by a page layout.
            return False
        # Skip the newline and trailing spaces of the previous line. A long blank stretch is no wrap.
        previous = line_start - 1
        stop = max(-1, line_start - 64)
        while previous > stop and text[previous].isspace():
            previous -= 1
        if previous <= stop or text[previous] in _LINE_FINAL_PUNCTUATION:
            return False

        next_char_at = _HORIZONTAL_SPACE_RUN.match(text, line_start).end()
        if next_char_at < len(text) and text[next_char_at].islower():
            return True
        # No newline in the previous _WRAPPED_LINE_CHARS characters: the line is that long at least.
        return (
            previous >= _WRAPPED_LINE_CHARS
            and text.rfind("\n", previous - _WRAPPED_LINE_CHARS, previous) == -1
        )


# Patterns searched by first_start, each with whether the cut is after the match (else before it).
_FIRST_START_PATTERNS: dict[Level, tuple[tuple[re.Pattern[str], bool], ...]] = {
    Level.LINE: ((_NEWLINE, True),),
    Level.SENTENCE: ((_SENTENCE_SPACED, True), (_SENTENCE_UNSPACED, True)),
    Level.CLAUSE: ((_CLAUSE_SPACED, True), (_CLAUSE_UNSPACED, True)),
    Level.WORD: ((_WORD_SPACE, False), (_NEWLINE, True)),
}


def _merged(spaced: re.Pattern[str], unspaced: re.Pattern[str], text: str, start: int, end: int) -> list[int]:
    """Return the match ends of both patterns in text[start:end], sorted."""
    cuts = [m.end() for m in spaced.finditer(text, start, end)]
    others = [m.end() for m in unspaced.finditer(text, start, end)]
    return sorted(cuts + others) if others else cuts

"""Split extracted text into chunks of at most `max_tokens` tokens, with overlap, at the best boundaries.

Sections are joined with SECTION_SEPARATOR into one source text. Each chunk's
text is a slice of it. Chunk N+1 starts with an overlap, a tail of chunk N of
at most about `overlap_tokens` tokens, and `Chunk.overlap` gives its length in
characters, so

    chunks[0].text + "".join(c.text[c.overlap:] for c in chunks[1:]) == source text

One exception: a blank stretch that fits neither at the end of the previous
chunk nor, within half a chunk, at the start of the next is left out in part,
because a chunk of only blank text carries nothing. Whitespace-only input
gives no chunk at all, and so does markdown made of nothing but headings.

Every chunk's token count, overlap included, is at most `max_tokens`. Counts
come from one encoding pass over the whole text (see token_offsets). A chunk
whose edges are not proven exact cuts is re-encoded to check its count.
"""

from __future__ import annotations

import bisect
import logging
import math
import re
from collections.abc import Sequence

from kernel_memory.errors import InvalidRequestError
from kernel_memory.models import Chunk, Section
from kernel_memory.partitioning.boundaries import BoundaryFinder, Level, is_exact_cut
from kernel_memory.partitioning.token_offsets import TokenOffsets
from kernel_memory.partitioning.tokenizer import Tokenizer, get_tokenizer

logger = logging.getLogger(__name__)

SECTION_SEPARATOR = "\n\n"
DEFAULT_MAX_TOKENS = 1000
DEFAULT_OVERLAP_TOKENS = 100
# One character is at most 4 UTF-8 bytes, so at most 4 tokens: a smaller limit could not always fit one.
MIN_MAX_TOKENS = 4

# Cut levels tried in order, each with the share of the chunk's new tokens that
# must come before the cut. A paragraph break in the first half of the budget
# loses to a line or sentence end later on, so chunks stay well filled. A word
# cut is taken anywhere, because only a cut inside a word is worse.
_CUT_LEVELS: tuple[tuple[Level, float], ...] = (
    (Level.HEADING, 0.3),
    (Level.PARAGRAPH, 0.5),
    (Level.LINE, 0.5),
    (Level.SENTENCE, 0.3),
    (Level.CLAUSE, 0.5),
    (Level.WORD, 0.0),
)

_SPACE_RUN = re.compile(r"\s*")
# A markdown line with text that is not an ATX heading.
_CONTENT_LINE = re.compile(r"^(?![ ]{0,3}#{1,6}(?:[ \t]|\r?$))[^\S\n]*\S", re.MULTILINE)


def partition_text(
    text: str,
    *,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    overlap_tokens: int = DEFAULT_OVERLAP_TOKENS,
    tokenizer: Tokenizer | None = None,
    markdown: bool = False,
) -> list[Chunk]:
    """Split one text into chunks; every chunk gets section number 1."""
    return partition_sections(
        [Section(number=1, text=text)],
        max_tokens=max_tokens,
        overlap_tokens=overlap_tokens,
        tokenizer=tokenizer,
        markdown=markdown,
    )


def partition_sections(
    sections: Sequence[Section],
    *,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    overlap_tokens: int = DEFAULT_OVERLAP_TOKENS,
    tokenizer: Tokenizer | None = None,
    markdown: bool = False,
) -> list[Chunk]:
    """Split the sections of a file (pages, slides) into chunks that record the section numbers they span.

    Chunks are numbered from 0, as Kernel Memory numbers partitions.

    Args:
        sections: the file's sections in order, joined with SECTION_SEPARATOR.
        max_tokens: maximum tokens per chunk, its overlap included.
        overlap_tokens: about how many tokens of the previous chunk each chunk repeats first; 0 for none.
        tokenizer: counts tokens; defaults to cl100k_base.
        markdown: also cut before headings and keep fenced code blocks whole when they fit.
    """
    _check_limits(max_tokens, overlap_tokens)
    tokenizer = tokenizer or get_tokenizer()
    text, section_index = _join_sections(sections)
    if not text or text.isspace():
        return []
    if markdown and _CONTENT_LINE.search(text) is None:
        # Headings alone carry no content to retrieve, so the file counts as empty.
        return []

    offsets = TokenOffsets.build(text, tokenizer)
    splitter = _Splitter(
        text,
        offsets,
        tokenizer,
        max_tokens=max_tokens,
        overlap_tokens=overlap_tokens,
        markdown=markdown,
    )
    chunks = [
        Chunk(
            number=number,
            text=text[start:end],
            token_count=token_count,
            section_numbers=section_index.numbers_between(own_start, end),
            overlap=own_start - start,
        )
        for number, (start, own_start, end, token_count) in enumerate(splitter.split())
    ]
    logger.debug(
        "partitioned %d characters, %d tokens into %d chunks (max %d, overlap %d tokens)",
        len(text),
        offsets.token_count,
        len(chunks),
        max_tokens,
        overlap_tokens,
    )
    return chunks


def _content_end(text: str) -> int:
    """Return the offset just after the last character that is not whitespace (without copying the text)."""
    end = len(text)
    while end > 0 and text[end - 1].isspace():
        end -= 1
    return end


def _check_limits(max_tokens: int, overlap_tokens: int) -> None:
    if max_tokens < MIN_MAX_TOKENS:
        raise InvalidRequestError(
            f"max tokens per chunk is {max_tokens}: it must be at least {MIN_MAX_TOKENS}, "
            "so that any single character fits"
        )
    if overlap_tokens < 0:
        raise InvalidRequestError(f"overlap tokens is {overlap_tokens}: it must be 0 or more")
    if overlap_tokens >= max_tokens:
        raise InvalidRequestError(
            f"overlap tokens ({overlap_tokens}) must be less than max tokens per chunk ({max_tokens}): "
            "lower the overlap or raise the chunk size"
        )


class _SectionIndex:
    """Offsets of each section's text, without its surrounding whitespace, in the joined text."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.numbers: list[int] = []

    def add(self, number: int, offset: int, text: str) -> None:
        stripped = text.strip()
        if not stripped:
            return
        start = offset + text.index(stripped[0])
        self.starts.append(start)
        self.ends.append(start + len(stripped))
        self.numbers.append(number)

    def numbers_between(self, start: int, end: int) -> tuple[int, ...]:
        """Return the sorted numbers of the sections with text inside [start, end)."""
        first = bisect.bisect_right(self.ends, start)
        found: set[int] = set()
        for index in range(first, len(self.starts)):
            if self.starts[index] >= end:
                break
            found.add(self.numbers[index])
        return tuple(sorted(found))


def _join_sections(sections: Sequence[Section]) -> tuple[str, _SectionIndex]:
    index = _SectionIndex()
    offset = 0
    for position, section in enumerate(sections):
        if position:
            offset += len(SECTION_SEPARATOR)
        index.add(section.number, offset, section.text)
        offset += len(section.text)
    return SECTION_SEPARATOR.join(section.text for section in sections), index


class _Splitter:
    """Walk the text once, choosing each chunk's end and the next chunk's overlap start."""

    def __init__(
        self,
        text: str,
        offsets: TokenOffsets,
        tokenizer: Tokenizer,
        *,
        max_tokens: int,
        overlap_tokens: int,
        markdown: bool,
    ) -> None:
        self.text = text
        self.offsets = offsets
        self.tokenizer = tokenizer
        self.max_tokens = max_tokens
        self.overlap_tokens = overlap_tokens
        self.finder = BoundaryFinder(text, markdown=markdown)
        self.levels = _CUT_LEVELS if markdown else _CUT_LEVELS[1:]
        self.content_end = _content_end(text)
        # Number of slices re-encoded because an edge was not an exact cut.
        self.recounts = 0

    def split(self) -> list[tuple[int, int, int, int]]:
        """Return (start, own start, end, token count) per chunk; the overlap is text[start:own start]."""
        text = self.text
        content_end = self.content_end
        spans: list[tuple[int, int, int, int]] = []
        start = own_start = 0
        while own_start < content_end:
            start, end, token_count = self._next_chunk(start, own_start)
            if text[own_start:end].isspace():
                if start < own_start:
                    # The overlap left room for blank text only: try again without it.
                    start = own_start
                    continue
                next_text = _SPACE_RUN.match(text, own_start).end()
                if spans and self._count(spans[-1][0], next_text) <= self.max_tokens:
                    # The blank text fits at the end of the previous chunk.
                    previous_start, previous_own_start, _, _ = spans[-1]
                    count = self._count(previous_start, next_text)
                    spans[-1] = (previous_start, previous_own_start, next_text, count)
                    own_start = start = next_text
                    continue
                # Too much blank text to share a chunk with the text around it: leave out its beginning.
                own_start = start = self._skip_blank(own_start)
                continue
            spans.append((start, own_start, end, token_count))
            own_start = end
            start = self._overlap_start(start, end) if end < content_end else end
        if spans and spans[-1][2] < len(text):
            spans[-1] = self._with_blank_tail(*spans[-1])
        return spans

    def _with_blank_tail(
        self, start: int, own_start: int, end: int, token_count: int
    ) -> tuple[int, int, int, int]:
        """Extend the last chunk over the blank text after it, dropping its overlap if that makes it fit."""
        length = len(self.text)
        for candidate_start in (start, own_start):
            tail_count = self._count(candidate_start, length)
            if tail_count <= self.max_tokens:
                return candidate_start, own_start, length, tail_count
        logger.debug("left out %d blank characters at the end", length - end)
        return start, own_start, end, token_count

    def _skip_blank(self, own_start: int) -> int:
        """Return where to resume after a blank stretch: keep at most half a chunk of it before the next text."""
        text = self.text
        next_text = _SPACE_RUN.match(text, own_start).end()
        budget = self.max_tokens // 2
        # Binary search for the longest blank tail within budget. The search window assumes that a
        # token covers at most 64 blank characters; a longer tail is cut at the window start.
        low, high = max(own_start, next_text - 64 * self.max_tokens), next_text
        while low < high:
            middle = (low + high) // 2
            if self.tokenizer.count(text[middle:next_text]) <= budget:
                high = middle
            else:
                low = middle + 1
        logger.debug("left out %d blank characters at offset %d", low - own_start, own_start)
        return low if low > own_start else next_text

    def _next_chunk(self, start: int, own_start: int) -> tuple[int, int, int]:
        """Choose where the chunk beginning at `start` ends; drop the overlap if it leaves no room."""
        while True:
            limit = self._window_end(start)
            if limit > own_start:
                end = self._choose_end(own_start, limit)
                token_count = self._count(start, end)
                while token_count > self.max_tokens:
                    # The estimate was short by a few tokens at an inexact edge: move the limit back by the excess.
                    excess = token_count - self.max_tokens
                    limit = self.offsets.end_of(self.offsets.tokens_before(end) - excess)
                    if limit <= own_start:
                        break
                    end = self._choose_end(own_start, limit)
                    token_count = self._count(start, end)
                if token_count <= self.max_tokens:
                    return start, end, token_count
            if start < own_start:
                start = own_start
                continue
            # Tokens here never end on a character boundary within the budget: take one character,
            # which is at most 4 tokens and so always fits.
            end = own_start + 1
            return start, end, self._count(start, end)

    def _window_end(self, start: int) -> int:
        """Return the furthest offset the chunk beginning at `start` may reach, by the token estimate."""
        return self.offsets.end_of(self.offsets.tokens_before(start) + self.max_tokens)

    def _choose_end(self, own_start: int, limit: int) -> int:
        """Return the best cut in (own_start, limit]: the highest level that leaves the chunk well filled."""
        text = self.text
        if limit >= len(text):
            return len(text)
        if limit >= self.content_end:
            # All the remaining text fits but its blank tail does not: leave the last word for a final
            # chunk, which can then take the tail too.
            if self.content_end - 1 <= own_start:
                return limit
            limit = self.content_end - 1

        finder = self.finder
        allowed_block = -1
        if finder.markdown:
            allowed_block = self._block_being_split(own_start)
            block = finder.block_at(limit)
            if block != -1 and block != allowed_block:
                # The limit falls inside a fenced code block that starts later: end before it and keep it whole.
                block_start = finder.block_bounds(block)[0]
                if block_start > own_start and not text[own_start:block_start].isspace():
                    return block_start

        offsets = self.offsets
        own_tokens = offsets.tokens_before(own_start)
        budget = offsets.tokens_before(limit) - own_tokens
        for level, share in self.levels:
            low = max(own_start + 1, offsets.end_of(own_tokens + math.ceil(share * budget)))
            cut = finder.last_cut(level, low, limit, allowed_block=allowed_block)
            if cut is not None and not text[own_start:cut].isspace():
                return cut
        # No boundary at all (a run of letters, text without spaces): cut at the last whole token.
        return limit

    def _block_being_split(self, own_start: int) -> int:
        """Return the fenced block the chunk starts in, counting blank text before a block as in it; else -1."""
        finder = self.finder
        block = finder.block_at(own_start)
        if block != -1:
            return block
        following = finder.next_block(own_start)
        if (
            following != -1
            and _SPACE_RUN.match(self.text, own_start).end() >= finder.block_bounds(following)[0]
        ):
            return following
        return -1

    def _overlap_start(self, previous_start: int, own_start: int) -> int:
        """Choose where the next chunk's overlap begins: at most `overlap_tokens` back, at a line, sentence or word."""
        if self.overlap_tokens == 0:
            return own_start
        offsets = self.offsets
        finder = self.finder
        first_token = offsets.tokens_before(own_start) - self.overlap_tokens
        low = max(previous_start, offsets.start_of(first_token))
        high = own_start - 1
        if low > high:
            return own_start

        # A line or sentence start wins when it keeps at least half the overlap.
        middle = low + (own_start - low) // 2
        overlap_start = finder.first_start(Level.LINE, low, middle)
        sentence_start = finder.first_start(
            Level.SENTENCE, low, middle if overlap_start is None else overlap_start
        )
        if sentence_start is not None:
            overlap_start = sentence_start
        for level in (Level.CLAUSE, Level.WORD):
            if overlap_start is None:
                overlap_start = finder.first_start(level, low, middle if level is Level.CLAUSE else high)
        if overlap_start is None:
            # No boundary (text without spaces): start at the first whole token within the budget.
            overlap_start = low
        if self.text[overlap_start:own_start].isspace():
            return own_start
        return overlap_start

    def _count(self, start: int, end: int) -> int:
        """Count the tokens of text[start:end]: by offsets when both edges are exact cuts, else by encoding."""
        offsets = self.offsets
        text = self.text
        if (
            is_exact_cut(text, start)
            and is_exact_cut(text, end)
            and not offsets.crosses_forced_seam(start, end)
        ):
            return offsets.tokens_before(end) - offsets.tokens_before(start)
        self.recounts += 1
        return self.tokenizer.count(text[start:end])

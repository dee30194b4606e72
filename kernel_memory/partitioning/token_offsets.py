"""Token end offsets of a whole text, in characters, from one encoding pass.

The chunker counts the tokens between two offsets thousands of times.
Encoding every candidate slice would cost a full encoding per count, so the
text is encoded once (in blocks, on a thread pool, since tiktoken releases the
GIL) and each token's end is mapped to a character offset. A count then costs
two binary searches.

A token may end inside a multi-byte character (an emoji split over two
tokens). Such an end maps to the offset after that character and is marked
unclean, so it is never offered as a place to cut.
"""

from __future__ import annotations

import bisect
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from kernel_memory.partitioning.boundaries import is_exact_cut
from kernel_memory.partitioning.tokenizer import Tokenizer

# Characters per encoding block. Large enough that per-call overhead vanishes,
# small enough that a long document keeps both cores busy.
BLOCK_CHARS = 1 << 20
# How far back from a block's nominal end to look for an exact cut before forcing one.
_SEAM_SEARCH_CHARS = 1 << 16


class TokenOffsets:
    """Character offset where each token of a text ends, with helpers to count tokens between offsets."""

    def __init__(
        self, ends: np.ndarray, clean: np.ndarray | None, forced_seams: list[int], length: int
    ) -> None:
        # ends[i] is the offset just after token i, rounded up to a character boundary.
        self.ends = ends
        # clean[i] is False where token i ends inside a character; None when every end is clean.
        self.clean = clean
        # Block seams that are not exact cuts: token counts across them are estimates.
        self.forced_seams = forced_seams
        self.length = length

    @property
    def token_count(self) -> int:
        return len(self.ends)

    @classmethod
    def build(cls, text: str, tokenizer: Tokenizer, *, block_chars: int = BLOCK_CHARS) -> TokenOffsets:
        """Encode `text` once and record where each token ends."""
        bounds, forced_seams = _split_blocks(text, block_chars)
        tables = tokenizer.character_tables()

        def encode_block(bound: tuple[int, int]) -> tuple[np.ndarray, np.ndarray | None]:
            start, end = bound
            return _block_ends(text[start:end], start, tokenizer, tables)

        if len(bounds) == 1:
            results = [encode_block(bounds[0])]
        else:
            workers = min(len(bounds), os.cpu_count() or 1)
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tokenize") as pool:
                results = list(pool.map(encode_block, bounds))

        ends = np.concatenate([block_ends for block_ends, _ in results]) if results else np.zeros(0, np.int64)
        clean: np.ndarray | None = None
        if any(block_clean is not None for _, block_clean in results):
            clean = np.concatenate(
                [
                    block_clean if block_clean is not None else np.ones(len(block_ends), dtype=bool)
                    for block_ends, block_clean in results
                ]
            )
        return cls(ends, clean, forced_seams, len(text))

    def tokens_before(self, position: int) -> int:
        """Count the tokens that end at or before `position`."""
        return int(self.ends.searchsorted(position, side="right"))

    def end_of(self, count: int) -> int:
        """Return the character offset where the first `count` tokens end, moved back to a character boundary."""
        if count <= 0:
            return 0
        if count >= len(self.ends):
            return self.length
        position = int(self.ends[count - 1])
        if self.clean is not None and not self.clean[count - 1]:
            position -= 1
        return position

    def start_of(self, index: int) -> int:
        """Return the character offset where token `index` starts, moved forward to a character boundary."""
        if index <= 0:
            return 0
        if index > len(self.ends):
            return self.length
        return int(self.ends[index - 1])

    def crosses_forced_seam(self, start: int, end: int) -> bool:
        seams = self.forced_seams
        if not seams:
            return False
        index = bisect.bisect_right(seams, start)
        return index < len(seams) and seams[index] < end


def _split_blocks(text: str, block_chars: int) -> tuple[list[tuple[int, int]], list[int]]:
    """Cut `text` into blocks of about `block_chars`, at exact cuts where the text has one."""
    length = len(text)
    bounds: list[tuple[int, int]] = []
    forced: list[int] = []
    start = 0
    while length - start > block_chars * 3 // 2:
        target = start + block_chars
        seam = _exact_cut_before(text, target, max(start + 1, target - _SEAM_SEARCH_CHARS))
        if seam is None:
            seam = target
            forced.append(seam)
        bounds.append((start, seam))
        start = seam
    bounds.append((start, length))
    return bounds, forced


def _exact_cut_before(text: str, target: int, low: int) -> int | None:
    """Find the last exact cut in [low, target], trying only newlines and spaces."""
    position = target
    tries = 0
    while position > low and tries < 256:
        tries += 1
        newline = text.rfind("\n", low, position)
        space = text.rfind(" ", low, position)
        found = max(newline, space)
        if found == -1:
            return None
        candidate = found + 1 if found == newline else found
        if low <= candidate <= target and is_exact_cut(text, candidate):
            return candidate
        position = found
    return None


def _block_ends(
    block: str, offset: int, tokenizer: Tokenizer, tables: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray | None]:
    """Return the character offset after each token of `block`, and which of those ends are clean (None: all)."""
    character_starts, begins_inside = tables
    tokens = tokenizer.encode_array(block)
    # Counting the characters that start before a token's end gives the offset after the
    # character it ends in, whole or not: the rounding up that TokenOffsets.ends documents.
    ends = np.cumsum(character_starts[tokens])
    ends += offset
    if block.isascii():
        return ends, None
    # A token ends inside a character exactly when the next token begins inside one.
    clean = np.ones(len(tokens), dtype=bool)
    clean[:-1] = ~begins_inside[tokens[1:]]
    return ends, (None if clean.all() else clean)

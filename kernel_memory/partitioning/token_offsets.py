"""Token end offsets of a whole text, in characters, from one encoding pass.

The chunker counts the tokens between two offsets thousands of times.
Encoding every candidate slice would cost a full encoding per count, so the
text is encoded once and each token's end is mapped to a character offset. A
count then costs two binary searches.

A long text is encoded in blocks on a thread pool (tiktoken releases the GIL).
The blocks are read in order as the chunker reaches them, so chunking the
first blocks runs while later ones are still being encoded.

A token may end inside a multi-byte character (an emoji split over two
tokens). Such an end maps to the offset after that character and is marked
unclean, so it is never offered as a place to cut.
"""

from __future__ import annotations

import bisect
import os
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from kernel_memory.partitioning.boundaries import is_exact_cut
from kernel_memory.partitioning.tokenizer import Tokenizer

# Characters per encoding block. Large enough that per-call overhead vanishes,
# small enough that a long document keeps both cores busy.
BLOCK_CHARS = 1 << 20
# How far back from a block's nominal end to look for an exact cut before forcing one.
_SEAM_SEARCH_CHARS = 1 << 16

# Per block: the character offset after each token, and which of those ends are clean (None: all).
_BlockEnds = tuple[np.ndarray, np.ndarray | None]


class TokenOffsets:
    """Character offset where each token of a text ends, with helpers to count tokens between offsets."""

    def __init__(
        self,
        length: int,
        block_ends: list[int],
        pending: list[Future[_BlockEnds] | _BlockEnds],
        forced_seams: list[int],
    ) -> None:
        self.length = length
        # Block seams that are not exact cuts: token counts across them are estimates.
        self.forced_seams = forced_seams
        # Character offset where each block ends, and its encoding, done or running.
        self._block_ends = block_ends
        self._pending: list[Future[_BlockEnds] | _BlockEnds | None] = list(pending)
        # For each block read so far: token ends (offset just after each token, rounded up to a
        # character boundary), clean flags, and the number of tokens up to the end of the block.
        self._ends: list[np.ndarray] = []
        self._clean: list[np.ndarray | None] = []
        self._token_totals: list[int] = []

    @classmethod
    def build(cls, text: str, tokenizer: Tokenizer, *, block_chars: int = BLOCK_CHARS) -> TokenOffsets:
        """Start encoding `text`; the offsets of each block are read when first needed."""
        bounds, forced_seams = _split_blocks(text, block_chars)
        tables = tokenizer.character_tables()

        def encode_block(bound: tuple[int, int]) -> _BlockEnds:
            start, end = bound
            return _block_ends(text[start:end], start, tokenizer, tables)

        pending: list[Future[_BlockEnds] | _BlockEnds]
        if len(bounds) == 1:
            pending = [encode_block(bounds[0])]
        else:
            pool = ThreadPoolExecutor(max_workers=min(len(bounds), os.cpu_count() or 1))
            pending = [pool.submit(encode_block, bound) for bound in bounds]
            # The submitted blocks still run; their threads end once the queue is empty.
            pool.shutdown(wait=False)
        return cls(len(text), [end for _, end in bounds], pending, forced_seams)

    @property
    def token_count(self) -> int:
        self._read_all()
        return self._token_totals[-1] if self._token_totals else 0

    @property
    def ends(self) -> np.ndarray:
        """Offset just after each token, rounded up to a character boundary."""
        self._read_all()
        return np.concatenate(self._ends) if self._ends else np.zeros(0, dtype=np.int64)

    @property
    def clean(self) -> np.ndarray | None:
        """False where a token ends inside a character; None when every end is clean."""
        self._read_all()
        if all(block_clean is None for block_clean in self._clean):
            return None
        return np.concatenate(
            [
                block_clean if block_clean is not None else np.ones(len(block_ends), dtype=bool)
                for block_ends, block_clean in zip(self._ends, self._clean, strict=True)
            ]
        )

    def tokens_before(self, position: int) -> int:
        """Count the tokens that end at or before `position`."""
        # The first block ending at or after `position` holds the tokens that may end there.
        block = min(bisect.bisect_left(self._block_ends, position), len(self._block_ends) - 1)
        while len(self._ends) <= block:
            self._read_next()
        before = self._token_totals[block - 1] if block else 0
        return before + int(self._ends[block].searchsorted(position, side="right"))

    def end_of(self, count: int) -> int:
        """Return the character offset where the first `count` tokens end, moved back to a character boundary."""
        position, clean = self._token_end(count - 1)
        return position if clean else position - 1

    def start_of(self, index: int) -> int:
        """Return the character offset where token `index` starts, moved forward to a character boundary."""
        return self._token_end(index - 1)[0]

    def _token_end(self, token_index: int) -> tuple[int, bool]:
        """Return the rounded-up end of token `token_index` and whether it is clean; 0 before the first token."""
        if token_index < 0:
            return 0, True
        located = self._locate(token_index)
        if located is None:
            return self.length, True
        block, index = located
        block_clean = self._clean[block]
        return int(self._ends[block][index]), block_clean is None or bool(block_clean[index])

    def crosses_forced_seam(self, start: int, end: int) -> bool:
        seams = self.forced_seams
        if not seams:
            return False
        index = bisect.bisect_right(seams, start)
        return index < len(seams) and seams[index] < end

    def _locate(self, token_index: int) -> tuple[int, int] | None:
        """Return (block, index in block) of token `token_index`, or None past the last token."""
        while True:
            block = bisect.bisect_right(self._token_totals, token_index)
            if block < len(self._token_totals):
                before = self._token_totals[block - 1] if block else 0
                return block, token_index - before
            if not self._read_next():
                return None

    def _read_next(self) -> bool:
        """Wait for the next block's encoding and append it; False when every block was read."""
        block = len(self._ends)
        if block == len(self._pending):
            return False
        item = self._pending[block]
        assert item is not None
        block_ends, block_clean = item.result() if isinstance(item, Future) else item
        self._pending[block] = None
        self._ends.append(block_ends)
        self._clean.append(block_clean)
        previous_total = self._token_totals[-1] if self._token_totals else 0
        self._token_totals.append(previous_total + len(block_ends))
        return True

    def _read_all(self) -> None:
        while self._read_next():
            pass


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

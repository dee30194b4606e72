"""Token end offsets: byte-to-character mapping, block seams, forced seams."""

from __future__ import annotations

import random

import pytest

from kernel_memory.partitioning.chunker import _Splitter
from kernel_memory.partitioning.token_offsets import TokenOffsets
from kernel_memory.partitioning.tokenizer import Tokenizer, get_tokenizer

MIXED = "Plain words, 🧪🧪 emoji, Ωμέγα, 的開發者大會。\n\n  e\u0301 👩‍👩‍👧 more text here.\n"


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return get_tokenizer("cl100k_base")


def expected_ends(text: str, tokenizer: Tokenizer) -> tuple[list[int], list[bool]]:
    """Compute each token's end in characters (rounded up) and whether it ends on a character boundary."""
    raw = text.encode("utf-8")
    ends, clean = [], []
    byte_end = 0
    for token in tokenizer.encode(text):
        byte_end += len(tokenizer.encoding.decode_single_token_bytes(token))
        ends.append(sum(1 for byte in raw[:byte_end] if byte & 0xC0 != 0x80))
        clean.append(byte_end == len(raw) or raw[byte_end] & 0xC0 != 0x80)
    return ends, clean


def test_offsets_map_bytes_to_characters(tokenizer: Tokenizer) -> None:
    offsets = TokenOffsets.build(MIXED, tokenizer)
    ends, clean = expected_ends(MIXED, tokenizer)
    assert offsets.ends.tolist() == ends
    assert offsets.clean is not None
    assert offsets.clean.tolist() == clean
    assert not all(clean)


def test_offsets_ascii_text_all_clean(tokenizer: Tokenizer) -> None:
    offsets = TokenOffsets.build("plain ascii text only", tokenizer)
    assert offsets.clean is None
    assert offsets.ends.tolist()[-1] == len("plain ascii text only")


def test_offsets_end_of_never_inside_character(tokenizer: Tokenizer) -> None:
    offsets = TokenOffsets.build(MIXED, tokenizer)
    assert offsets.clean is not None
    for count in range(1, offsets.token_count + 1):
        end = offsets.end_of(count)
        # The first `count` tokens cover text[:end] at least, and no more whole tokens fit in it.
        assert offsets.tokens_before(end) <= count, count
        if not offsets.clean[count - 1]:
            assert end == offsets.ends[count - 1] - 1, count


def test_offsets_blocks_join_exactly(tokenizer: Tokenizer) -> None:
    rng = random.Random(8)
    words = ["plan", "Coverage", "the", "漢字", "🧪", "claims", "42", "(note)"]
    text = "\n".join(" ".join(rng.choice(words) for _ in range(12)) for _ in range(400))
    whole = TokenOffsets.build(text, tokenizer, block_chars=len(text) * 2)
    blocked = TokenOffsets.build(text, tokenizer, block_chars=1000)
    assert blocked.forced_seams == []
    assert blocked.ends.tolist() == whole.ends.tolist()


def test_offsets_forced_seams_in_text_without_breaks(tokenizer: Tokenizer) -> None:
    text = "a" * 5000 + "漢" * 3000
    offsets = TokenOffsets.build(text, tokenizer, block_chars=1000)
    assert offsets.forced_seams
    assert offsets.crosses_forced_seam(0, len(text))


def test_splitter_counts_exact_across_forced_seams(tokenizer: Tokenizer) -> None:
    text = "a" * 5000 + "漢" * 3000 + " tail words. " * 50
    offsets = TokenOffsets.build(text, tokenizer, block_chars=1000)
    splitter = _Splitter(text, offsets, tokenizer, max_tokens=64, overlap_tokens=6, markdown=False)
    spans = splitter.split()
    assert splitter.recounts > 0
    for start, own_start, end, token_count in spans:
        assert tokenizer.count(text[start:end]) == token_count, (start, end)
        assert token_count <= 64
    assert spans[-1][2] == len(text)

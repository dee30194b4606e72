"""Cut positions: exact cuts keep tiktoken's tokens, boundary levels, fenced code blocks."""

from __future__ import annotations

import random

import pytest

from kernel_memory.partitioning.boundaries import BoundaryFinder, Level, fenced_blocks, is_exact_cut
from kernel_memory.partitioning.tokenizer import get_tokenizer

# Characters that stress tiktoken's pre-tokenization patterns: letters of
# several scripts and cases, digits, apostrophes, slashes, punctuation, every
# kind of whitespace, combining marks, emoji and characters that Python calls
# whitespace but tiktoken does not (\x1c).
ALPHABET = list("aZé漢ñ 0123'/.,!?-()\"#*") + [
    " ",
    " ",
    "\t",
    "\n",
    "\n",
    "\r",
    "\r\n",
    "\x0b",
    "\x1c",
    "\u00a0",
    "\u3000",
    "\u2028",
    "\u0301",
    "🧪",
    "Ω",
    "ß",
    "'s",
    " the",
    "\n\n",
    "  ",
]


@pytest.mark.parametrize("encoding", ["cl100k_base", "o200k_base"])
def test_exact_cut_keeps_tokens_on_random_text(encoding: str) -> None:
    tokenizer = get_tokenizer(encoding)
    rng = random.Random(1234)
    checked = 0
    for _ in range(1500):
        text = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 30)))
        whole = tokenizer.encode(text)
        for position in range(1, len(text)):
            if is_exact_cut(text, position):
                checked += 1
                left, right = text[:position], text[position:]
                assert tokenizer.encode(left) + tokenizer.encode(right) == whole, (text, position)
    # Enough interior cuts were proven for the check to mean something.
    assert checked > 1500


@pytest.mark.parametrize(
    ("text", "position", "expected"),
    [
        ("foo bar", 3, True),
        ("foo bar", 4, False),
        ("foo\nbar", 4, True),
        ("foo.\n\nBar", 6, True),
        ("foo\n\nbar", 4, False),
        ("a\r\nb", 2, False),
        ("x.\n/usr", 3, False),
        ("end\n   ", 4, False),
        ("say (this)", 3, True),
        ("value 42", 5, False),
    ],
)
def test_exact_cut_examples(text: str, position: int, expected: bool) -> None:
    assert is_exact_cut(text, position) is expected


def test_fenced_blocks_closed_and_unclosed() -> None:
    text = "intro\n```python\nx = 1\n```\nmiddle\n~~~\nopen block\n"
    blocks = fenced_blocks(text)
    assert blocks == [(6, 26), (33, len(text))]


def test_fenced_block_closing_fence_has_no_info_string() -> None:
    text = "```\ncode\n```python\nmore code\n```\nafter\n"
    assert fenced_blocks(text) == [(0, len(text) - len("after\n"))]


def test_fenced_block_needs_matching_fence() -> None:
    text = "````\n```\nstill code\n````\nafter\n"
    assert fenced_blocks(text) == [(0, 25)]


def test_finder_heading_ignored_inside_code() -> None:
    text = "para\n\n# Title\ntext\n```\n# comment\n```\n## Next\n"
    finder = BoundaryFinder(text, markdown=True)
    headings = [p for p in range(len(text) + 1) if finder.last_cut(Level.HEADING, p, p) == p]
    assert headings == [text.index("# Title"), text.index("## Next")]


def test_finder_wrapped_line_is_no_line_end() -> None:
    text = "Northwind Health Plus offers coverage for vision \nexams, glasses and lenses.\nNext line\n"
    finder = BoundaryFinder(text, markdown=False)
    wrap = text.index("exams")
    line_end = text.index("Next")
    assert finder.last_cut(Level.LINE, 0, wrap) is None
    assert finder.last_cut(Level.LINE, 0, line_end) == line_end
    assert finder.last_cut(Level.WORD, wrap, wrap) == wrap


def test_finder_sentence_cut_before_space() -> None:
    text = "First sentence. Second one, e.g. this. Third"
    finder = BoundaryFinder(text, markdown=False)
    cut = finder.last_cut(Level.SENTENCE, 0, len(text))
    assert text[:cut] == "First sentence. Second one, e.g. this."


def test_finder_sentence_cut_after_cjk_mark() -> None:
    text = "的開發者大會。發布了一個新的服務。的"
    finder = BoundaryFinder(text, markdown=False)
    assert finder.last_cut(Level.SENTENCE, 0, len(text)) == len(text) - 1

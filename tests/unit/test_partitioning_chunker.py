"""The chunker on synthetic text: limits, overlap, join-back, boundary preference, markdown, sections."""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

import pytest

from kernel_memory.errors import InvalidRequestError
from kernel_memory.models import Chunk, Section
from kernel_memory.partitioning import SECTION_SEPARATOR, get_tokenizer, partition_sections, partition_text
from kernel_memory.partitioning.tokenizer import Tokenizer

WORDS = [
    "plan",
    "coverage",
    "provider",
    "network",
    "claim",
    "deductible",
    "premium",
    "employee",
    "benefit",
    "dental",
    "vision",
    "the",
    "a",
    "of",
    "and",
    "to",
    "in",
    "is",
    "for",
    "with",
    "Northwind",
    "Contoso",
    "health",
    "care",
    "service",
]


def join_back(chunks: Sequence[Chunk]) -> str:
    if not chunks:
        return ""
    return chunks[0].text + "".join(chunk.text[chunk.overlap :] for chunk in chunks[1:])


def without_some_blanks(joined: str, source: str) -> bool:
    """Tell whether `joined` is `source` with some whitespace characters left out, and nothing else changed."""
    position = 0
    for char in source:
        if position < len(joined) and joined[position] == char:
            position += 1
        elif not char.isspace():
            return False
    return position == len(joined)


def check_chunks(
    chunks: Sequence[Chunk],
    source: str,
    *,
    max_tokens: int,
    tokenizer: Tokenizer,
    blank_may_drop: bool = False,
) -> None:
    """Assert the invariants every chunking must keep, one cause per assert."""
    if blank_may_drop:
        assert without_some_blanks(join_back(chunks), source)
    else:
        assert join_back(chunks) == source
    for index, chunk in enumerate(chunks):
        counted = tokenizer.count(chunk.text)
        assert counted <= max_tokens, (index, counted)
        assert chunk.token_count == counted, index
        assert chunk.text.strip(), index
        assert "\ufffd" not in chunk.text, index
        assert chunk.number == index
        own = chunk.text[chunk.overlap :]
        assert own.strip(), index
        if index == 0:
            assert chunk.overlap == 0
        elif chunk.overlap:
            # The overlap is exactly the end of the previous chunk, nothing else is repeated.
            assert chunks[index - 1].text.endswith(chunk.text[: chunk.overlap]), index


def only_headings(text: str) -> bool:
    """Tell whether every line of markdown `text` is blank or an ATX heading."""
    return all(re.fullmatch(r"[ ]{0,3}#{1,6}([ \t].*)?\r?|\s*", line) for line in text.split("\n"))


def random_prose(rng: random.Random, paragraphs: int) -> str:
    parts = []
    for _ in range(paragraphs):
        sentences = []
        for _ in range(rng.randint(1, 8)):
            words = [rng.choice(WORDS) for _ in range(rng.randint(3, 25))]
            sentences.append(" ".join(words).capitalize() + rng.choice([".", ".", "!", "?", ";"]))
        parts.append(" ".join(sentences))
    return "\n\n".join(parts)


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return get_tokenizer("cl100k_base")


def test_chunker_rejects_overlap_not_below_max() -> None:
    with pytest.raises(InvalidRequestError, match=r"overlap tokens \(100\).*max tokens per chunk \(100\)"):
        partition_text("some text", max_tokens=100, overlap_tokens=100)


def test_chunker_rejects_negative_overlap() -> None:
    with pytest.raises(InvalidRequestError, match="-1"):
        partition_text("some text", max_tokens=100, overlap_tokens=-1)


def test_chunker_rejects_tiny_max_tokens() -> None:
    with pytest.raises(InvalidRequestError, match="at least 4"):
        partition_text("some text", max_tokens=3, overlap_tokens=0)


@pytest.mark.parametrize("text", ["", " ", "\n\n\t  \r\n", "\u3000\u00a0"])
def test_chunker_whitespace_only_gives_no_chunks(text: str) -> None:
    assert partition_text(text, max_tokens=50, overlap_tokens=5) == []


@pytest.mark.parametrize("text", ["# A\n\n## B\n", "   ### Only\r\n\n#\r\n", "#"])
def test_chunker_markdown_headings_only_gives_no_chunks(text: str) -> None:
    assert partition_text(text, max_tokens=50, overlap_tokens=5, markdown=True) == []


@pytest.mark.parametrize("text", ["# A\nbody", "#hashtag", "    # indented code", "# A\n\n- item"])
def test_chunker_markdown_with_content_gives_chunks(text: str) -> None:
    assert partition_text(text, max_tokens=50, overlap_tokens=5, markdown=True) != []


def test_chunker_short_text_is_one_chunk(tokenizer: Tokenizer) -> None:
    text = "  Hello world.\n\n"
    chunks = partition_text(text, max_tokens=50, overlap_tokens=5)
    assert [chunk.text for chunk in chunks] == [text]
    assert chunks[0].token_count == tokenizer.count(text)
    assert chunks[0].section_numbers == (1,)


def test_chunker_random_prose_invariants(tokenizer: Tokenizer) -> None:
    rng = random.Random(7)
    for case in range(40):
        text = random_prose(rng, rng.randint(1, 30))
        max_tokens = rng.choice([8, 20, 60, 200, 1000])
        overlap = rng.choice([0, max_tokens // 10, max_tokens // 2, max_tokens - 1])
        chunks = partition_text(text, max_tokens=max_tokens, overlap_tokens=overlap, markdown=case % 2 == 0)
        check_chunks(chunks, text, max_tokens=max_tokens, tokenizer=tokenizer)


def test_chunker_random_characters_invariants(tokenizer: Tokenizer) -> None:
    # Hostile mixtures: multi-token characters, CJK, whitespace kinds, fences and headings.
    alphabet = list("ab 漢字。，🧪Ωé\u0301\n\t.!#`~/'") + [
        "\n\n",
        "```",
        "\r\n",
        "  ",
        "# ",
        "<|endoftext|>",
        "\u3000",
    ]
    rng = random.Random(11)
    for case in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 400)))
        max_tokens = rng.choice([4, 5, 8, 16, 50])
        overlap = rng.randint(0, max_tokens - 1)
        chunks = partition_text(text, max_tokens=max_tokens, overlap_tokens=overlap, markdown=case % 2 == 1)
        if not text.strip() or (case % 2 == 1 and only_headings(text)):
            assert chunks == []
            continue
        # Under 8 tokens, a blank run may fit in no chunk beside text, and is then left out.
        check_chunks(chunks, text, max_tokens=max_tokens, tokenizer=tokenizer, blank_may_drop=max_tokens < 8)


def test_chunker_o200k_invariants() -> None:
    tokenizer = get_tokenizer("o200k_base")
    text = random_prose(random.Random(3), 20) + "\n/path/to/x\n" + "的開發者大會，發布了一個新的服務。" * 30
    chunks = partition_text(text, max_tokens=64, overlap_tokens=8, tokenizer=tokenizer)
    check_chunks(chunks, text, max_tokens=64, tokenizer=tokenizer)


def test_chunker_prefers_paragraph_breaks(tokenizer: Tokenizer) -> None:
    paragraphs = [" ".join(["word"] * 30) + "." for _ in range(12)]
    text = "\n\n".join(paragraphs)
    chunks = partition_text(text, max_tokens=100, overlap_tokens=0)
    check_chunks(chunks, text, max_tokens=100, tokenizer=tokenizer)
    for chunk in chunks[:-1]:
        assert chunk.text.endswith(".\n\n"), chunk.text[-20:]


def test_chunker_prefers_sentence_ends_inside_long_paragraph(tokenizer: Tokenizer) -> None:
    text = " ".join(f"Sentence number {n} talks about the dental plan coverage." for n in range(200))
    chunks = partition_text(text, max_tokens=100, overlap_tokens=10)
    check_chunks(chunks, text, max_tokens=100, tokenizer=tokenizer)
    for chunk in chunks[:-1]:
        assert chunk.text.endswith("coverage."), chunk.text[-30:]


def test_chunker_overlap_starts_at_word(tokenizer: Tokenizer) -> None:
    text = random_prose(random.Random(5), 40)
    chunks = partition_text(text, max_tokens=120, overlap_tokens=30)
    check_chunks(chunks, text, max_tokens=120, tokenizer=tokenizer)
    overlapping = [chunk for chunk in chunks[1:] if chunk.overlap]
    assert len(overlapping) == len(chunks) - 1
    for chunk in overlapping:
        assert tokenizer.count(chunk.text[: chunk.overlap]) <= 30
        # The overlap begins at a line start or before the space of a word, never inside a word.
        assert chunk.text[0] in " \n" or chunk.text[0].isupper(), chunk.text[:20]


def test_chunker_without_overlap_repeats_nothing(tokenizer: Tokenizer) -> None:
    text = random_prose(random.Random(9), 30)
    chunks = partition_text(text, max_tokens=80, overlap_tokens=0)
    check_chunks(chunks, text, max_tokens=80, tokenizer=tokenizer)
    assert all(chunk.overlap == 0 for chunk in chunks)
    assert "".join(chunk.text for chunk in chunks) == text


def test_chunker_markdown_cuts_before_heading(tokenizer: Tokenizer) -> None:
    rng = random.Random(2)
    text = "\n".join(f"## Part {n}\n{random_prose(rng, 2)}\n" for n in range(10))
    chunks = partition_text(text, max_tokens=300, overlap_tokens=0, markdown=True)
    check_chunks(chunks, text, max_tokens=300, tokenizer=tokenizer)
    starts = [chunk.text.lstrip("\n")[:8] for chunk in chunks]
    assert sum(start.startswith("## Part") for start in starts) >= len(chunks) - 1, starts


def test_chunker_markdown_keeps_code_block_whole(tokenizer: Tokenizer) -> None:
    code = "```python\n" + "\n\n".join(f"def f{n}(x):\n    return x + {n}" for n in range(15)) + "\n```\n"
    text = "Intro paragraph. " * 20 + "\n\n" + code + "\nAfter the code. " * 20
    assert tokenizer.count(code) < 200
    chunks = partition_text(text, max_tokens=200, overlap_tokens=0, markdown=True)
    check_chunks(chunks, text, max_tokens=200, tokenizer=tokenizer)
    holding = [chunk for chunk in chunks if "def f0" in chunk.text]
    assert len(holding) == 1
    assert code in holding[0].text


def test_chunker_markdown_splits_code_block_over_limit(tokenizer: Tokenizer) -> None:
    code = "```\n" + "\n".join(f"line_{n} = compute({n})" for n in range(300)) + "\n```\n"
    text = "# Code\n\n" + code + "\nDone.\n"
    chunks = partition_text(text, max_tokens=100, overlap_tokens=10, markdown=True)
    check_chunks(chunks, text, max_tokens=100, tokenizer=tokenizer)
    inner = [chunk for chunk in chunks[1:-1]]
    assert inner
    # Inside the block, cuts fall at line ends.
    assert all(chunk.text.endswith("\n") for chunk in inner)


def test_chunker_text_without_separators_within_limit(tokenizer: Tokenizer) -> None:
    text = "x" * 50_000
    chunks = partition_text(text, max_tokens=100, overlap_tokens=10)
    check_chunks(chunks, text, max_tokens=100, tokenizer=tokenizer)
    assert all(chunk.token_count > 80 for chunk in chunks[:-1])


def test_chunker_blank_stretch_longer_than_chunk_left_out(tokenizer: Tokenizer) -> None:
    blank = "\n \n\t" * 400
    text = "First part." + blank + "Second part."
    chunks = partition_text(text, max_tokens=20, overlap_tokens=0)
    assert [chunk.text.strip() for chunk in chunks] == ["First part.", "Second part."]
    assert all(chunk.token_count <= 20 for chunk in chunks)
    assert all(tokenizer.count(chunk.text) == chunk.token_count for chunk in chunks)


def test_chunker_section_numbers(tokenizer: Tokenizer) -> None:
    rng = random.Random(4)
    sections = [Section(number=n, text=random_prose(rng, rng.randint(1, 6))) for n in range(1, 9)]
    sections.insert(3, Section(number=99, text="  \n "))
    chunks = partition_sections(sections, max_tokens=120, overlap_tokens=20)
    text = SECTION_SEPARATOR.join(section.text for section in sections)
    check_chunks(chunks, text, max_tokens=120, tokenizer=tokenizer)
    assert all(99 not in chunk.section_numbers for chunk in chunks)
    assert_section_numbers(chunks, sections)


def assert_section_numbers(chunks: Sequence[Chunk], sections: Sequence[Section]) -> None:
    """Check each chunk's section numbers against where its own text lies, computed character by character."""
    spans = []
    offset = 0
    for section in sections:
        spans.append((section.number, offset, offset + len(section.text)))
        offset += len(section.text) + len(SECTION_SEPARATOR)
    text = SECTION_SEPARATOR.join(section.text for section in sections)

    own_start = 0
    for chunk in chunks:
        own_end = own_start + len(chunk.text) - chunk.overlap
        expected = tuple(
            sorted(
                {
                    number
                    for number, start, end in spans
                    if re.search(r"\S", text[max(start, own_start) : min(end, own_end)])
                }
            )
        )
        assert chunk.section_numbers == expected, (chunk.number, chunk.text[:40])
        own_start = own_end

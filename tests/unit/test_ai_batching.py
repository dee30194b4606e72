"""Embedding batching base: input checks, batch planning, order and concurrency."""

from __future__ import annotations

import asyncio

import pytest

from kernel_memory.ai.batching import BatchingEmbeddingGenerator, BatchLimits, plan_batches
from kernel_memory.ai.retry import RetryPolicy
from kernel_memory.errors import InvalidRequestError, PermanentError, ThrottledError


class RecordingGenerator(BatchingEmbeddingGenerator):
    """An in-process adapter that returns [length of text] vectors and records its batches."""

    def __init__(self, limits: BatchLimits, *, delay: float = 0.0, retry_policy: RetryPolicy | None = None):
        super().__init__(model_id="recording", limits=limits, retry_policy=retry_policy)
        self.batches: list[list[str]] = []
        self.delay = delay
        self.in_flight = 0
        self.max_in_flight = 0
        self.failures: list[Exception] = []

    async def _embed_batch(self, texts: list[str]) -> list[list[float]]:
        self.batches.append(texts)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
            if self.failures:
                raise self.failures.pop(0)
            return [[float(len(text))] for text in texts]
        finally:
            self.in_flight -= 1


def limits(**overrides: int) -> BatchLimits:
    values = {
        "max_input_tokens": 100,
        "max_batch_size": 4,
        "max_tokens_per_request": 1000,
        "max_concurrency": 2,
    }
    values.update(overrides)
    return BatchLimits(**values)


def test_plan_batches_by_count():
    assert plan_batches([1] * 5, max_batch_size=2, max_tokens_per_request=100) == [
        range(2),
        range(2, 4),
        range(4, 5),
    ]


def test_plan_batches_by_token_budget():
    assert plan_batches([4, 4, 4, 1], max_batch_size=10, max_tokens_per_request=8) == [
        range(2),
        range(2, 4),
    ]


def test_plan_batches_oversized_input_alone():
    assert plan_batches([2, 50, 2], max_batch_size=10, max_tokens_per_request=10) == [
        range(1),
        range(1, 2),
        range(2, 3),
    ]


def test_plan_batches_empty():
    assert plan_batches([], max_batch_size=10, max_tokens_per_request=10) == []


async def test_embed_documents_keeps_order():
    generator = RecordingGenerator(limits(max_batch_size=2))
    texts = ["a", "bb", "ccc", "dddd", "eeeee"]
    vectors = await generator.embed_documents(texts)
    assert vectors == [[1.0], [2.0], [3.0], [4.0], [5.0]]


async def test_embed_documents_batches_by_count():
    generator = RecordingGenerator(limits(max_batch_size=3))
    await generator.embed_documents([f"text {n}" for n in range(7)])
    assert [len(batch) for batch in generator.batches] == [3, 3, 1]


async def test_embed_documents_batches_by_tokens():
    generator = RecordingGenerator(limits(max_batch_size=100, max_tokens_per_request=25))
    # Ten words are 10 cl100k_base tokens, so two texts fit under 25 and a third does not.
    await generator.embed_documents([" ".join(["word"] * 10)] * 5)
    assert [len(batch) for batch in generator.batches] == [2, 2, 1]


async def test_embed_documents_empty_list_no_calls():
    generator = RecordingGenerator(limits())
    assert await generator.embed_documents([]) == []
    assert generator.batches == []


@pytest.mark.parametrize("blank", ["", " ", "\n\t  \r\n", "\u3000"])
async def test_embed_documents_rejects_blank(blank):
    generator = RecordingGenerator(limits())
    with pytest.raises(InvalidRequestError, match="input 1 is blank"):
        await generator.embed_documents(["fine", blank])
    assert generator.batches == []


async def test_embed_query_rejects_blank():
    generator = RecordingGenerator(limits())
    with pytest.raises(InvalidRequestError, match="query 0 is blank"):
        await generator.embed_query("   ")


async def test_embed_documents_rejects_over_limit():
    generator = RecordingGenerator(limits(max_input_tokens=5))
    with pytest.raises(InvalidRequestError, match="input 0 has 20 tokens but recording reads at most 5"):
        await generator.embed_documents([" ".join(["word"] * 20)])
    assert generator.batches == []


async def test_embed_documents_special_token_text_counted():
    generator = RecordingGenerator(limits())
    vectors = await generator.embed_documents(["before <|endoftext|> after"])
    assert len(vectors) == 1


async def test_embed_documents_concurrency_bound():
    generator = RecordingGenerator(limits(max_batch_size=1, max_concurrency=3), delay=0.02)
    await generator.embed_documents([f"text {n}" for n in range(12)])
    assert generator.max_in_flight == 3


async def test_embed_documents_raises_first_error_unwrapped():
    generator = RecordingGenerator(limits(max_batch_size=1))
    generator.failures = [PermanentError("model exploded")]
    with pytest.raises(PermanentError, match="model exploded"):
        await generator.embed_documents(["a", "b", "c"])


async def test_embed_documents_retries_batch():
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    generator = RecordingGenerator(limits(), retry_policy=RetryPolicy(max_retries=2, sleep=sleep))
    generator.failures = [ThrottledError("busy", retry_after=0.3)]
    vectors = await generator.embed_documents(["abc"])
    assert vectors == [[3.0]]
    assert sleeps == [0.3]


async def test_embed_documents_rejects_wrong_vector_count():
    class ShortGenerator(RecordingGenerator):
        async def _embed_batch(self, texts: list[str]) -> list[list[float]]:
            return [[1.0]]

    with pytest.raises(PermanentError, match="returned 1 vectors for 2 texts"):
        await ShortGenerator(limits()).embed_documents(["a", "b"])


def test_batch_limits_reject_zero():
    with pytest.raises(ValueError, match="max_concurrency"):
        BatchLimits(max_input_tokens=10, max_concurrency=0)

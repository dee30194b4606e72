"""Base class of embedding adapters: input checks, batching, bounded concurrency, retry.

An adapter subclasses `BatchingEmbeddingGenerator` and implements only the I/O,
`_embed_batch` (and `_embed_query_batch` when queries are embedded differently).
Everything the adapters would otherwise repeat lives here:

- blank inputs are rejected, because a whitespace-only text yields a meaningless
  vector (and OpenAI rejects an empty string with a 400);
- inputs over `max_input_tokens` are rejected, because the partitioner already
  guarantees that limit and a silently truncated chunk would be half-indexed;
- inputs are grouped into requests of at most `max_batch_size` texts and
  `max_tokens_per_request` tokens, counted with the partitioning tokenizer;
- at most `max_concurrency` requests run at once per generator, and vectors come
  back in input order.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from kernel_memory.ai.retry import RetryPolicy
from kernel_memory.errors import InvalidRequestError, PermanentError
from kernel_memory.settings import EmbeddingSettings

logger = logging.getLogger(__name__)

# The port measures every limit in cl100k_base tokens, whatever the model's own tokenizer.
TOKEN_ENCODING = "cl100k_base"


@dataclass(frozen=True, kw_only=True)
class BatchLimits:
    """Limits an embedding generator enforces on its inputs and requests."""

    max_input_tokens: int
    max_batch_size: int = 16
    max_tokens_per_request: int = 8000
    max_concurrency: int = 4

    def __post_init__(self) -> None:
        for name in ("max_input_tokens", "max_batch_size", "max_tokens_per_request", "max_concurrency"):
            value = getattr(self, name)
            if value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")

    @classmethod
    def from_settings(cls, settings: EmbeddingSettings, *, model_max_input_tokens: int) -> BatchLimits:
        """Build the limits from settings; `max_input_tokens = 0` there means the model's own limit."""
        return cls(
            max_input_tokens=settings.max_input_tokens or model_max_input_tokens,
            max_batch_size=settings.max_batch_size,
            max_tokens_per_request=settings.max_tokens_per_request,
            max_concurrency=settings.max_concurrency,
        )


def plan_batches(
    token_counts: Sequence[int], *, max_batch_size: int, max_tokens_per_request: int
) -> list[range]:
    """Group consecutive inputs into requests within both the count and the token budget.

    Returns index ranges in input order. An input larger than the token budget gets a
    request of its own because it cannot be split here. The input limit, checked
    before planning, keeps such an input acceptable to the model.
    """
    batches: list[range] = []
    start = 0
    tokens = 0
    for index, count in enumerate(token_counts):
        size = index - start
        if size > 0 and (size >= max_batch_size or tokens + count > max_tokens_per_request):
            batches.append(range(start, index))
            start = index
            tokens = 0
        tokens += count
    if start < len(token_counts):
        batches.append(range(start, len(token_counts)))
    return batches


def _load_token_counter() -> Callable[[str], int]:
    from kernel_memory.partitioning import get_tokenizer

    return get_tokenizer(TOKEN_ENCODING).count


class BatchingEmbeddingGenerator(ABC):
    """Implements the `EmbeddingGenerator` port on top of one batch call per request."""

    def __init__(
        self, *, model_id: str, limits: BatchLimits, retry_policy: RetryPolicy | None = None
    ) -> None:
        """
        Args:
            model_id: Identifies the model and its options (such as the vector size) in
                the embedding cache and on stored records.
            limits: Input and request limits, see `BatchLimits.from_settings`.
            retry_policy: Retries transient failures of one batch; None calls once,
                which suits in-process models that cannot be throttled.
        """
        self.model_id = model_id
        self.max_input_tokens = limits.max_input_tokens
        self.dimensions: int | None = None
        self.limits = limits
        self._retry_policy = retry_policy
        self._count_tokens: Callable[[str], int] | None = None
        # An asyncio.Semaphore belongs to the event loop that first waits on it, and one
        # generator may serve several loops (tests, `asyncio.run` per CLI command).
        self._semaphore: asyncio.Semaphore | None = None
        self._semaphore_loop: asyncio.AbstractEventLoop | None = None

    @abstractmethod
    async def _embed_batch(self, texts: list[str]) -> list[list[float]]:
        """Embed one request's worth of passages; the texts are already checked."""

    async def _embed_query_batch(self, texts: list[str]) -> list[list[float]]:
        """Embed queries; models that embed queries like passages keep this default."""
        return await self._embed_batch(texts)

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed passages for storage, one vector per text, in input order.

        Raises:
            InvalidRequestError: A text is blank or longer than `max_input_tokens`.
        """
        if not texts:
            return []
        token_counts = self._check_inputs(texts)
        batches = plan_batches(
            token_counts,
            max_batch_size=self.limits.max_batch_size,
            max_tokens_per_request=self.limits.max_tokens_per_request,
        )

        vectors: list[list[float]] = [[] for _ in texts]
        tasks = [
            asyncio.ensure_future(self._run_batch(texts, batch, vectors, query=False)) for batch in batches
        ]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            # Stop the other batches and raise the first error itself, where a TaskGroup
            # would wrap it in an ExceptionGroup that callers do not expect.
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

        logger.info(
            "embedded %d texts (%d tokens) in %d requests with %s",
            len(texts),
            sum(token_counts),
            len(batches),
            self.model_id,
        )
        return vectors

    async def embed_query(self, text: str) -> list[float]:
        """Embed a search query.

        Raises:
            InvalidRequestError: The query is blank or longer than `max_input_tokens`.
        """
        self._check_inputs([text], kind="query")
        vectors: list[list[float]] = [[]]
        await self._run_batch([text], range(1), vectors, query=True)
        return vectors[0]

    def _check_inputs(self, texts: Sequence[str], *, kind: str = "input") -> list[int]:
        counts: list[int] = []
        count_tokens = self._token_counter()
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                raise InvalidRequestError(
                    f"embedding {kind} {index} is a {type(text).__name__}, not a string"
                )
            if not text.strip():
                raise InvalidRequestError(
                    f"embedding {kind} {index} is blank: drop whitespace-only text before embedding it"
                )
            count = count_tokens(text)
            if count > self.max_input_tokens:
                raise InvalidRequestError(
                    f"embedding {kind} {index} has {count} tokens but {self.model_id} reads at most "
                    f"{self.max_input_tokens}: split the text into smaller partitions "
                    f"(KM_PARTITIONING__MAX_TOKENS_PER_PARAGRAPH) before embedding it"
                )
            counts.append(count)
        return counts

    def _token_counter(self) -> Callable[[str], int]:
        if self._count_tokens is None:
            self._count_tokens = _load_token_counter()
        return self._count_tokens

    def _current_semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._semaphore is None or self._semaphore_loop is not loop:
            self._semaphore = asyncio.Semaphore(self.limits.max_concurrency)
            self._semaphore_loop = loop
        return self._semaphore

    async def _run_batch(
        self, texts: Sequence[str], batch: range, vectors: list[list[float]], *, query: bool
    ) -> None:
        chunk = [texts[index] for index in batch]
        call = self._embed_query_batch if query else self._embed_batch
        description = f"{self.model_id} embeddings for {len(chunk)} texts"

        async with self._current_semaphore():
            if self._retry_policy is None:
                result = await call(chunk)
            else:
                result = await self._retry_policy.run(lambda: call(chunk), description=description)

        if len(result) != len(chunk):
            raise PermanentError(
                f"{self.model_id} returned {len(result)} vectors for {len(chunk)} texts; "
                f"the model service broke the one-vector-per-input contract"
            )
        for index, vector in zip(batch, result, strict=True):
            vectors[index] = vector
        logger.debug("%s: batch of texts %d..%d embedded", self.model_id, batch.start, batch.stop - 1)

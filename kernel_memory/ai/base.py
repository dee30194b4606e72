"""AI ports: embedding generation and text generation."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol


class EmbeddingGenerator(Protocol):
    """Turns texts into vectors. Implementations batch, bound concurrency and retry."""

    # Identifies the model in the embedding cache and on stored records.
    model_id: str
    # Longest input the model reads, in tokens of the partitioning tokenizer (cl100k_base).
    # Chunks are never cut larger than this, so a vector always covers its whole chunk.
    max_input_tokens: int
    # Vector size when known before the first call, else None. An index created for records
    # without vectors takes it, so later uploads with vectors fit.
    dimensions: int | None

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed passages for storage, one vector per text, in order."""
        ...

    async def embed_query(self, text: str) -> list[float]:
        """Embed a search query (some models embed queries differently from passages)."""
        ...


class TextGenerator(Protocol):
    """Writes an answer from a prompt."""

    model_id: str
    # Largest prompt plus answer the model accepts, in tokens.
    max_tokens: int
    # True when the answer is composed from the facts, not written by a language model.
    extractive: bool

    def generate(self, prompt: str, *, max_tokens: int, temperature: float) -> AsyncIterator[str]:
        """Stream the answer text in pieces."""
        ...

"""Token counting and chunking: an offline tiktoken tokenizer and a paragraph-, sentence- and markdown-aware chunker."""

from __future__ import annotations

from kernel_memory.partitioning.chunker import (
    DEFAULT_MAX_TOKENS,
    DEFAULT_OVERLAP_TOKENS,
    SECTION_SEPARATOR,
    partition_sections,
    partition_text,
)
from kernel_memory.partitioning.tokenizer import DEFAULT_ENCODING, Tokenizer, get_tokenizer

__all__ = [
    "DEFAULT_ENCODING",
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_OVERLAP_TOKENS",
    "SECTION_SEPARATOR",
    "Tokenizer",
    "get_tokenizer",
    "partition_sections",
    "partition_text",
]

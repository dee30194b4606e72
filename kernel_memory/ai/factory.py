"""Build the configured embedding and text generators from `Settings`.

Each adapter module is imported only when its type is configured, so the local
defaults never import the `openai` SDK and the OpenAI types never load ONNX.
"""

from __future__ import annotations

import logging
from pathlib import Path

from kernel_memory.ai.base import EmbeddingGenerator, TextGenerator
from kernel_memory.errors import PermanentError
from kernel_memory.settings import Settings

logger = logging.getLogger(__name__)

# File of the embedding cache, inside the data folder.
EMBEDDING_CACHE_FILE = Path("embedding-cache.sqlite3")


def build_embedding_generator(settings: Settings) -> EmbeddingGenerator:
    """Build the generator `KM_EMBEDDING__TYPE` names, behind the cache when `KM_EMBEDDING__CACHE` is on.

    Raises:
        PermanentError: A setting the type needs is missing, naming the variable to set.
    """
    embedding = settings.embedding
    generator: EmbeddingGenerator
    if embedding.type == "local":
        from kernel_memory.ai.local_embedding import LocalEmbeddingGenerator

        generator = LocalEmbeddingGenerator(embedding)
    elif embedding.type == "openai":
        from kernel_memory.ai.openai_adapters import OpenAIEmbeddingGenerator

        generator = OpenAIEmbeddingGenerator(embedding)
    elif embedding.type == "azure_openai":
        from kernel_memory.ai.openai_adapters import AzureOpenAIEmbeddingGenerator

        generator = AzureOpenAIEmbeddingGenerator(embedding)
    else:
        raise PermanentError(
            f"KM_EMBEDDING__TYPE={embedding.type!r} is not supported: use local, openai or azure_openai"
        )

    if not embedding.cache:
        logger.info("embedding with %s, cache off", generator.model_id)
        return generator

    from kernel_memory.ai.cache import CachedEmbeddingGenerator, EmbeddingCache

    cache_path = settings.resolve(EMBEDDING_CACHE_FILE)
    logger.info("embedding with %s, cache at %s", generator.model_id, cache_path)
    return CachedEmbeddingGenerator(generator, EmbeddingCache(cache_path))


def build_text_generator(settings: Settings) -> TextGenerator:
    """Build the text generator `KM_TEXT_GENERATION__TYPE` names.

    Raises:
        PermanentError: A setting the type needs is missing, naming the variable to set.
    """
    text_generation = settings.text_generation
    if text_generation.type == "extractive":
        from kernel_memory.retrieval.extractive import ExtractiveTextGenerator

        return ExtractiveTextGenerator(settings)
    if text_generation.type == "openai":
        from kernel_memory.ai.openai_adapters import OpenAITextGenerator

        return OpenAITextGenerator(text_generation)
    if text_generation.type == "azure_openai":
        from kernel_memory.ai.openai_adapters import AzureOpenAITextGenerator

        return AzureOpenAITextGenerator(text_generation)
    raise PermanentError(
        f"KM_TEXT_GENERATION__TYPE={text_generation.type!r} is not supported: "
        f"use extractive, openai or azure_openai"
    )

"""Embedding and text generation: the ports, the shared machinery and the adapters.

`build_embedding_generator` and `build_text_generator` turn `Settings` into the
configured implementations; adapter modules load only when configured.
"""

from kernel_memory.ai.base import EmbeddingGenerator, TextGenerator
from kernel_memory.ai.factory import build_embedding_generator, build_text_generator

__all__ = ["EmbeddingGenerator", "TextGenerator", "build_embedding_generator", "build_text_generator"]

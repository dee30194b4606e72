"""What every pipeline step needs: settings and the ports, built once per process."""

from __future__ import annotations

from dataclasses import dataclass

from kernel_memory.ai.base import EmbeddingGenerator, TextGenerator
from kernel_memory.extraction.base import OcrEngine
from kernel_memory.memorydb.base import MemoryDb
from kernel_memory.settings import Settings
from kernel_memory.storage.base import DocumentStorage


@dataclass(slots=True)
class PipelineContext:
    settings: Settings
    storage: DocumentStorage
    memory_db: MemoryDb
    embedder: EmbeddingGenerator
    text_generator: TextGenerator
    ocr: OcrEngine | None = None

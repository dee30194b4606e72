"""Step `gen_embeddings`: one vector per chunk, with the document's title in front of the chunk."""

from __future__ import annotations

import logging
import re
from pathlib import PurePosixPath

from kernel_memory.models import Chunk, PipelineState
from kernel_memory.partitioning import get_tokenizer
from kernel_memory.pipeline.artifacts import (
    ARTIFACT_EMBEDDINGS,
    EMBEDDINGS_SUFFIX,
    PARTITIONS_SUFFIX,
    dump_vectors,
    load_chunks,
)
from kernel_memory.pipeline.context import PipelineContext
from kernel_memory.pipeline.steps.artifact_files import write_artifact

logger = logging.getLogger(__name__)

STEP = "gen_embeddings"

# Tokens kept free in every chunk for the title header; longer titles are cut to fit.
TITLE_TOKENS = 24


def title_for(file_name: str) -> str:
    """Readable title from a file name: `Northwind_Health_Plus.pdf` gives `Northwind Health Plus`."""
    stem = PurePosixPath(file_name).stem
    return re.sub(r"[_\s]+", " ", stem).strip()


def embedding_input(title: str, chunk: Chunk) -> str:
    """Text embedded for a chunk.

    The title in front marks which document the chunk belongs to,
    which separates near-identical passages of different documents.
    """
    return f"{title}\n\n{chunk.text}" if title else chunk.text


def _fit_title(title: str, encoding: str) -> str:
    # One token is kept for the blank line between title and chunk.
    return get_tokenizer(encoding).truncate(title, TITLE_TOKENS - 1).strip()


async def run_gen_embeddings(ctx: PipelineContext, state: PipelineState) -> None:
    for file in state.files:
        if STEP in file.processed_by or file.error:
            continue
        partitions_name = file.name + PARTITIONS_SUFFIX
        if partitions_name not in file.generated_files:
            file.processed_by.append(STEP)
            continue

        chunks = load_chunks(await ctx.storage.read_file(state.index, state.document_id, partitions_name))
        title = _fit_title(title_for(file.name), ctx.settings.partitioning.encoding)
        texts = [embedding_input(title, chunk) for chunk in chunks]
        vectors = await ctx.embedder.embed_documents(texts) if texts else []

        await write_artifact(
            ctx,
            state,
            file,
            file.name + EMBEDDINGS_SUFFIX,
            dump_vectors(vectors),
            mime_type="application/x-npy",
            artifact_type=ARTIFACT_EMBEDDINGS,
            partition_number=len(vectors),
            generator=ctx.embedder.model_id,
        )
        file.processed_by.append(STEP)
        logger.info(
            "embedded %s/%s file %s: %d chunks with %s",
            state.index,
            state.document_id,
            file.name,
            len(vectors),
            ctx.embedder.model_id,
        )

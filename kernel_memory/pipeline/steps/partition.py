"""Step `partition`: cut each file's sections into token-limited chunks."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from kernel_memory.errors import InvalidRequestError
from kernel_memory.models import PipelineState
from kernel_memory.partitioning import get_tokenizer, partition_sections
from kernel_memory.pipeline.artifacts import (
    ARTIFACT_PARTITIONS,
    EXTRACT_SUFFIX,
    PARTITIONS_SUFFIX,
    dump_chunks,
    load_sections,
)
from kernel_memory.pipeline.context import PipelineContext
from kernel_memory.pipeline.steps.artifact_files import write_artifact
from kernel_memory.pipeline.steps.gen_embeddings import TITLE_TOKENS

logger = logging.getLogger(__name__)

STEP = "partition"

# Kernel Memory's names for per-upload partitioning overrides in `args`.
ARG_MAX_TOKENS = "custom_partitioning_max_tokens_per_paragraph"
ARG_OVERLAP = "custom_partitioning_overlapping_tokens"

MARKDOWN_TYPES = {"text/markdown", "text/x-markdown"}


def chunk_limits(ctx: PipelineContext, state: PipelineState) -> tuple[int, int]:
    """Return (max tokens, overlap tokens) for this document.

    Upload `args` override the settings. When the document will be embedded,
    chunks never exceed what the embedding model reads, or its vector would
    ignore the end of the chunk.
    """
    config = ctx.settings.partitioning
    max_tokens = _int_arg(state.args, ARG_MAX_TOKENS, config.max_tokens_per_paragraph)
    overlap = _int_arg(state.args, ARG_OVERLAP, config.overlapping_tokens)

    if "gen_embeddings" in state.steps:
        model_limit = ctx.settings.embedding.max_input_tokens or ctx.embedder.max_input_tokens
        # Room for the title that gen_embeddings puts in front of each chunk.
        model_limit -= TITLE_TOKENS
        if max_tokens > model_limit:
            # Keep the overlap's share of the chunk when the model forces smaller chunks.
            overlap = overlap * model_limit // max_tokens
            max_tokens = model_limit

    if max_tokens < 10:
        raise InvalidRequestError(f"{ARG_MAX_TOKENS}={max_tokens} is too small: use at least 10 tokens")
    if not 0 <= overlap < max_tokens:
        raise InvalidRequestError(
            f"{ARG_OVERLAP}={overlap} is invalid: it must be at least 0 and below the chunk size {max_tokens}"
        )
    return max_tokens, overlap


def _int_arg(args: dict[str, Any], name: str, default: int) -> int:
    value = args.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InvalidRequestError(f"argument {name}={value!r} is invalid: expected a whole number") from None


async def run_partition(ctx: PipelineContext, state: PipelineState) -> None:
    max_tokens, overlap = chunk_limits(ctx, state)
    tokenizer = get_tokenizer(ctx.settings.partitioning.encoding)

    for file in state.files:
        if STEP in file.processed_by or file.error:
            continue
        extract_name = file.name + EXTRACT_SUFFIX
        if extract_name not in file.generated_files:
            file.processed_by.append(STEP)
            continue

        data = await ctx.storage.read_file(state.index, state.document_id, extract_name)
        sections = load_sections(data)
        chunks = await asyncio.to_thread(
            partition_sections,
            sections,
            max_tokens=max_tokens,
            overlap_tokens=overlap,
            tokenizer=tokenizer,
            markdown=file.mime_type in MARKDOWN_TYPES,
        )

        await write_artifact(
            ctx,
            state,
            file,
            file.name + PARTITIONS_SUFFIX,
            dump_chunks(chunks),
            mime_type="application/json",
            artifact_type=ARTIFACT_PARTITIONS,
            partition_number=len(chunks),
        )
        file.empty = not chunks
        file.processed_by.append(STEP)
        logger.info(
            "partitioned %s/%s file %s: %d chunks of at most %d tokens, overlap %d",
            state.index,
            state.document_id,
            file.name,
            len(chunks),
            max_tokens,
            overlap,
        )

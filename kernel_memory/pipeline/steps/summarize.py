"""Step `summarize`: a short summary per file, stored as an extra synthetic record."""

from __future__ import annotations

import logging

from kernel_memory.models import (
    TAG_SYNTHETIC,
    PipelineState,
)
from kernel_memory.partitioning import get_tokenizer
from kernel_memory.pipeline.artifacts import (
    ARTIFACT_SUMMARY,
    EXTRACT_SUFFIX,
    SUMMARY_SUFFIX,
    load_sections,
)
from kernel_memory.pipeline.context import PipelineContext
from kernel_memory.pipeline.steps.artifact_files import write_artifact
from kernel_memory.pipeline.steps.save_records import file_record

logger = logging.getLogger(__name__)

STEP = "summarize"
SUMMARY_TOKENS = 250
# Partition number of the summary record, apart from the chunks' 0..n numbers.
SUMMARY_PARTITION = -1

SUMMARY_PROMPT = (
    "Summarize the following document in a few sentences. Keep names, numbers and dates.\n\n"
    "Document:\n{text}\n\nSummary:"
)


async def run_summarize(ctx: PipelineContext, state: PipelineState) -> None:
    tokenizer = get_tokenizer(ctx.settings.partitioning.encoding)
    for file in state.files:
        if STEP in file.processed_by or file.error:
            continue
        extract_name = file.name + EXTRACT_SUFFIX
        if extract_name not in file.generated_files or file.empty:
            file.processed_by.append(STEP)
            continue

        sections = load_sections(await ctx.storage.read_file(state.index, state.document_id, extract_name))
        text = "\n\n".join(section.text for section in sections)
        summary = await _summarize(ctx, text, tokenizer)
        summary = tokenizer.truncate(summary, ctx.embedder.max_input_tokens).strip()
        if not summary:
            file.processed_by.append(STEP)
            continue

        await write_artifact(
            ctx, state, file, file.name + SUMMARY_SUFFIX, summary.encode("utf-8"), artifact_type=ARTIFACT_SUMMARY
        )

        vector = (await ctx.embedder.embed_documents([summary]))[0]
        record = file_record(
            state,
            file,
            SUMMARY_PARTITION,
            summary,
            vector=vector,
            sections=[],
            tags={TAG_SYNTHETIC: ["summary"]},
        )
        await ctx.memory_db.create_index(state.index, len(vector))
        await ctx.memory_db.upsert(state.index, [record])
        file.processed_by.append(STEP)
        logger.info("summarized %s/%s file %s", state.index, state.document_id, file.name)


async def _summarize(ctx: PipelineContext, text: str, tokenizer) -> str:
    generator = ctx.text_generator
    if generator.extractive:
        # No language model: the leading sentences of the document stand in for a summary.
        return tokenizer.truncate(text, SUMMARY_TOKENS)

    budget = max(256, generator.max_tokens - SUMMARY_TOKENS - 64)
    prompt = SUMMARY_PROMPT.format(text=tokenizer.truncate(text, budget))
    pieces = [piece async for piece in generator.generate(prompt, max_tokens=SUMMARY_TOKENS, temperature=0.0)]
    return "".join(pieces)

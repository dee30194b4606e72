"""Step `save_records`: write one memory record per chunk and purge the previous upload's records."""

from __future__ import annotations

import logging

from kernel_memory.models import (
    PAYLOAD_FILE,
    PAYLOAD_LAST_UPDATE,
    PAYLOAD_SECTIONS,
    PAYLOAD_TEXT,
    PAYLOAD_URL,
    TAG_DOCUMENT_ID,
    TAG_EXECUTION_ID,
    TAG_FILE_ID,
    TAG_FILE_PART,
    TAG_FILE_TYPE,
    TAG_PART_N,
    TAG_SECT_N,
    FileDetails,
    MemoryRecord,
    PipelineState,
    utc_now,
)
from kernel_memory.pipeline.artifacts import (
    EMBEDDINGS_SUFFIX,
    PARTITIONS_SUFFIX,
    load_chunks,
    load_vectors,
    record_id_for,
)
from kernel_memory.pipeline.context import PipelineContext

logger = logging.getLogger(__name__)

STEP = "save_records"

# Records sent to the memory DB per call.
UPSERT_BATCH = 500


def document_url(index: str, document_id: str, file_name: str) -> str:
    """Relative download link of a file, as Kernel Memory's web service serves it."""
    from urllib.parse import urlencode

    return "/download?" + urlencode({"index": index, "documentId": document_id, "filename": file_name})


def file_record(
    state: PipelineState,
    file: FileDetails,
    number: int,
    text: str,
    *,
    vector: list[float] | None,
    sections: list[int],
    tags: dict[str, list[str]],
) -> MemoryRecord:
    """Build record `number` of a file: the document's tags and ids plus `tags`, and the usual payload."""
    record_tags = {key: list(values) for key, values in state.tags.items()}
    record_tags[TAG_DOCUMENT_ID] = [state.document_id]
    record_tags[TAG_FILE_ID] = [file.id]
    record_tags[TAG_EXECUTION_ID] = [state.execution_id]
    record_tags.update(tags)
    return MemoryRecord(
        id=record_id_for(state.document_id, state.execution_id, file.id, number),
        vector=vector,
        tags=record_tags,
        payload={
            PAYLOAD_TEXT: text,
            PAYLOAD_FILE: file.name,
            PAYLOAD_URL: document_url(state.index, state.document_id, file.name),
            PAYLOAD_LAST_UPDATE: utc_now().isoformat(),
            PAYLOAD_SECTIONS: sections,
        },
    )


async def run_save_records(ctx: PipelineContext, state: PipelineState) -> None:
    for file in state.files:
        if STEP in file.processed_by or file.error:
            continue
        records = await _records_for_file(ctx, state, file)
        if records:
            # Without embeddings the index takes the model's size, when known, for later uploads.
            vector_size = len(records[0].vector) if records[0].vector is not None else ctx.embedder.dimensions or 0
            await ctx.memory_db.create_index(state.index, vector_size)
            for start in range(0, len(records), UPSERT_BATCH):
                await ctx.memory_db.upsert(state.index, records[start : start + UPSERT_BATCH])
        file.processed_by.append(STEP)
        logger.info(
            "saved %s/%s file %s: %d records", state.index, state.document_id, file.name, len(records)
        )

    await purge_previous_executions(ctx, state)


async def purge_previous_executions(ctx: PipelineContext, state: PipelineState) -> None:
    """Delete the records that earlier uploads of this document id left behind."""
    for old_execution in list(state.previous_executions_to_purge):
        deleted = await ctx.memory_db.delete_by_filter(
            state.index, {TAG_DOCUMENT_ID: [state.document_id], TAG_EXECUTION_ID: [old_execution]}
        )
        state.previous_executions_to_purge.remove(old_execution)
        logger.info(
            "purged %d records of %s/%s from execution %s", deleted, state.index, state.document_id, old_execution
        )


async def _records_for_file(ctx: PipelineContext, state: PipelineState, file: FileDetails) -> list[MemoryRecord]:
    partitions_name = file.name + PARTITIONS_SUFFIX
    if partitions_name not in file.generated_files:
        return []
    chunks = load_chunks(await ctx.storage.read_file(state.index, state.document_id, partitions_name))
    if not chunks:
        return []

    vectors = None
    embeddings_name = file.name + EMBEDDINGS_SUFFIX
    if embeddings_name in file.generated_files:
        vectors = load_vectors(await ctx.storage.read_file(state.index, state.document_id, embeddings_name))

    partition_artifact_id = file.generated_files[partitions_name].id
    return [
        file_record(
            state,
            file,
            chunk.number,
            chunk.text,
            vector=vectors[position].tolist() if vectors is not None else None,
            sections=list(chunk.section_numbers),
            tags={
                TAG_FILE_PART: [partition_artifact_id],
                TAG_FILE_TYPE: [file.mime_type],
                TAG_PART_N: [str(chunk.number)],
                TAG_SECT_N: [str(chunk.first_section)],
            },
        )
        for position, chunk in enumerate(chunks)
    ]

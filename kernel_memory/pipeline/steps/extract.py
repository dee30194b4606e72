"""Step `extract`: turn each uploaded file into numbered sections of text."""

from __future__ import annotations

import logging

from kernel_memory.errors import KernelMemoryError
from kernel_memory.extraction import extract_file
from kernel_memory.models import PipelineState
from kernel_memory.pipeline.artifacts import ARTIFACT_EXTRACTION, EXTRACT_SUFFIX, dump_sections
from kernel_memory.pipeline.context import PipelineContext
from kernel_memory.pipeline.steps.artifact_files import write_artifact

logger = logging.getLogger(__name__)

STEP = "extract"


async def run_extract(ctx: PipelineContext, state: PipelineState) -> None:
    for file in state.files:
        if STEP in file.processed_by or file.error:
            continue

        data = await ctx.storage.read_file(state.index, state.document_id, file.name)
        try:
            extracted = await extract_file(data, file_name=file.name, mime_type=file.mime_type, ocr=ctx.ocr)
        except KernelMemoryError as error:
            if error.transient:
                raise
            # A corrupt or unsupported file fails alone: the document's other files carry on.
            file.error = str(error)
            file.processed_by.append(STEP)
            logger.warning(
                "extract failed for %s/%s file %s: %s", state.index, state.document_id, file.name, error
            )
            continue

        await write_artifact(
            ctx,
            state,
            file,
            file.name + EXTRACT_SUFFIX,
            dump_sections(extracted.sections),
            mime_type="application/json",
            artifact_type=ARTIFACT_EXTRACTION,
        )

        file.mime_type = extracted.mime_type
        file.skipped_reason = extracted.skipped_reason
        file.empty = extracted.is_empty
        file.processed_by.append(STEP)
        logger.info(
            "extracted %s/%s file %s: %d sections, %d characters",
            state.index,
            state.document_id,
            file.name,
            len(extracted.sections),
            sum(len(section.text) for section in extracted.sections),
        )

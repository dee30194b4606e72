"""Storing a step's artifact next to the uploaded file and listing it in the file's status."""

from __future__ import annotations

from typing import Any

from kernel_memory.models import FileDetails, GeneratedFile, PipelineState
from kernel_memory.pipeline.artifacts import short_hash
from kernel_memory.pipeline.context import PipelineContext


async def write_artifact(
    ctx: PipelineContext,
    state: PipelineState,
    file: FileDetails,
    name: str,
    payload: bytes,
    **fields: Any,
) -> None:
    """Write `payload` as artifact `name` of the document and record it in `file.generated_files`.

    `fields` are further GeneratedFile fields, such as the artifact type and MIME type.
    """
    await ctx.storage.write_file(state.index, state.document_id, name, payload)
    file.generated_files[name] = GeneratedFile(
        id=short_hash(file.id, name), name=name, size=len(payload), **fields
    )

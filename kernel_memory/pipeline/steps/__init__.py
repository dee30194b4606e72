"""Pipeline steps. Each one processes every file of a document it has not processed yet."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from kernel_memory.models import PipelineState
from kernel_memory.pipeline.context import PipelineContext
from kernel_memory.pipeline.steps.extract import run_extract
from kernel_memory.pipeline.steps.gen_embeddings import run_gen_embeddings
from kernel_memory.pipeline.steps.partition import run_partition
from kernel_memory.pipeline.steps.save_records import run_save_records
from kernel_memory.pipeline.steps.summarize import run_summarize

StepHandler = Callable[[PipelineContext, PipelineState], Awaitable[None]]

STEP_HANDLERS: dict[str, StepHandler] = {
    "extract": run_extract,
    "partition": run_partition,
    "gen_embeddings": run_gen_embeddings,
    "save_records": run_save_records,
    "summarize": run_summarize,
}

"""The pipeline: start an upload, run one step per pointer message, delete documents and indexes.

Every step message is a small pointer `{index, document_id, execution_id}`;
the state lives in `__pipeline_status.json`. A step drops a message whose
execution id is stale, skips files it already processed, saves the state
with an ETag check and then sends the next step's message. So a message
delivered twice, or a worker that dies between saving and sending, changes
nothing but may repeat a step's idempotent work.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from kernel_memory.errors import ConcurrencyError, KernelMemoryError, NotFoundError, is_transient
from kernel_memory.models import (
    TAG_DOCUMENT_ID,
    TAG_EXECUTION_ID,
    FileDetails,
    PipelineState,
    TagCollection,
    utc_now,
)
from kernel_memory.pipeline.artifacts import file_id_for
from kernel_memory.pipeline.context import PipelineContext
from kernel_memory.pipeline.state import StateStore
from kernel_memory.pipeline.steps import STEP_HANDLERS

logger = logging.getLogger(__name__)

DELETE_DOCUMENT_STEP = "private_delete_document"
DELETE_INDEX_STEP = "private_delete_index"
PIPELINE_STEPS = tuple(STEP_HANDLERS)
ALL_STEPS = (*PIPELINE_STEPS, DELETE_DOCUMENT_STEP, DELETE_INDEX_STEP)


class Dispatcher(Protocol):
    """Delivers a step message: to a storage queue, or to the in-process worker."""

    async def dispatch(self, step: str, body: dict[str, Any]) -> None: ...


class StepOutcome(StrEnum):
    DONE = "done"
    # The document was re-uploaded since the message was sent.
    STALE = "stale"
    # The step already ran for this execution (a redelivered message).
    DUPLICATE = "duplicate"
    # The document or its state no longer exists.
    MISSING = "missing"
    FAILED = "failed"


@dataclass(slots=True)
class UploadedFile:
    name: str
    data: bytes
    content_type: str | None = None


def step_message(state: PipelineState) -> dict[str, str]:
    return {"index": state.index, "document_id": state.document_id, "execution_id": state.execution_id}


class Pipeline:
    def __init__(self, ctx: PipelineContext, *, dispatcher: Dispatcher | None = None) -> None:
        self.ctx = ctx
        self.states = StateStore(ctx.storage)
        self.dispatcher = dispatcher

    # ------------------------------------------------------------ upload

    async def start(
        self,
        *,
        index: str,
        document_id: str,
        files: Sequence[UploadedFile],
        tags: TagCollection,
        steps: Sequence[str],
        args: dict[str, Any] | None = None,
    ) -> PipelineState:
        """Store the files and a fresh state, then send the first step's message."""
        previous = await self.states.try_load(index, document_id)
        to_purge = []
        if previous is not None:
            to_purge = [*previous.previous_executions_to_purge, previous.execution_id]

        for file in files:
            await self.ctx.storage.write_file(index, document_id, file.name, file.data)

        state = PipelineState(
            index=index,
            document_id=document_id,
            execution_id=uuid.uuid4().hex,
            steps=list(steps),
            remaining_steps=list(steps),
            tags=tags,
            files=[
                FileDetails(
                    id=file_id_for(file.name),
                    name=file.name,
                    size=len(file.data),
                    mime_type=file.content_type or "",
                )
                for file in files
            ],
            previous_executions_to_purge=to_purge,
            args=dict(args or {}),
        )
        # Overwrite whatever state is there: the new upload wins over one still running.
        await self.states.save(state, etag=None)
        logger.info(
            "upload %s/%s accepted: execution %s, %d files, steps %s",
            index,
            document_id,
            state.execution_id,
            len(files),
            ",".join(steps),
        )

        if state.remaining_steps:
            await self._dispatch(state.remaining_steps[0], step_message(state))
        else:
            await self.states.update(index, document_id, _finish)
        return state

    # ------------------------------------------------------------ steps

    async def run_step(self, step: str, body: dict[str, Any], *, dequeue_count: int = 1) -> StepOutcome:
        """Run one step for the document a message points to.

        Transient errors propagate so the queue delivers the message again;
        permanent ones mark the document failed and consume the message.
        """
        if step == DELETE_DOCUMENT_STEP:
            await self.delete_document_now(body["index"], body["document_id"])
            return StepOutcome.DONE
        if step == DELETE_INDEX_STEP:
            await self.delete_index_now(body["index"])
            return StepOutcome.DONE

        index, document_id, execution_id = body["index"], body["document_id"], body["execution_id"]
        ids = f"{index}/{document_id} execution {execution_id} step {step}"
        try:
            state, etag = await self.states.load(index, document_id)
        except NotFoundError:
            logger.info("dropping message for %s: the document no longer exists", ids)
            return StepOutcome.MISSING

        outcome = self._check_message(state, step, execution_id)
        if outcome is StepOutcome.DUPLICATE and state.remaining_steps:
            # The worker that ran this step may have died before sending the next message.
            await self._dispatch(state.remaining_steps[0], step_message(state))
        if outcome is not None:
            logger.info("dropping message for %s: %s", ids, outcome.value)
            return outcome

        handler = STEP_HANDLERS.get(step)
        if handler is None:
            return await self._fail(state, f"unknown pipeline step '{step}'")

        try:
            await handler(self.ctx, state)
        except Exception as error:  # noqa: BLE001 - re-raised when transient, else recorded as the failure
            return await self._handle_step_error(state, step, error, dequeue_count=dequeue_count)

        state.remaining_steps.pop(0)
        state.completed_steps.append(step)
        if not state.remaining_steps:
            _finish(state)

        try:
            await self.states.save(state, etag=etag)
        except ConcurrencyError:
            return await self._resolve_save_conflict(state, step)

        logger.info("step done for %s (dequeue count %d)", ids, dequeue_count)
        if state.remaining_steps:
            await self._dispatch(state.remaining_steps[0], step_message(state))
        return StepOutcome.DONE

    async def mark_failed(self, body: dict[str, Any], error: str) -> bool:
        """Mark a document failed after its message exhausted its deliveries (the poison queue handler)."""
        execution_id = body.get("execution_id")

        def change(state: PipelineState) -> bool:
            if execution_id and state.execution_id != execution_id:
                return False
            state.failed = True
            state.completed = False
            state.error = error
            return True

        saved = await self.states.update(body["index"], body["document_id"], change)
        if saved is not None:
            logger.warning("marked %s/%s failed: %s", body["index"], body["document_id"], error)
        return saved is not None

    def _check_message(self, state: PipelineState, step: str, execution_id: str) -> StepOutcome | None:
        if state.execution_id != execution_id:
            return StepOutcome.STALE
        if state.failed:
            return StepOutcome.FAILED
        if not state.remaining_steps or state.remaining_steps[0] != step:
            return StepOutcome.DUPLICATE
        return None

    async def _handle_step_error(
        self, state: PipelineState, step: str, error: Exception, *, dequeue_count: int
    ) -> StepOutcome:
        # A step that failed because the document changed under it is no failure of the document.
        current = await self.states.try_load(state.index, state.document_id)
        if current is None or current.execution_id != state.execution_id:
            await self._discard_stale_records(state)
            return StepOutcome.STALE if current else StepOutcome.MISSING

        if is_transient(error) and dequeue_count < self.ctx.settings.queue.max_dequeue_count:
            logger.warning(
                "step %s of %s/%s failed on delivery %d, will retry: %s",
                step,
                state.index,
                state.document_id,
                dequeue_count,
                error,
            )
            raise error

        reason = str(error) if isinstance(error, KernelMemoryError) else f"{type(error).__name__}: {error}"
        return await self._fail(state, f"step {step} failed: {reason}")

    async def _fail(self, state: PipelineState, reason: str) -> StepOutcome:
        await self.mark_failed(step_message(state), reason)
        return StepOutcome.FAILED

    async def _resolve_save_conflict(self, state: PipelineState, step: str) -> StepOutcome:
        current = await self.states.try_load(state.index, state.document_id)
        if current is None or current.execution_id != state.execution_id:
            await self._discard_stale_records(state)
            return StepOutcome.STALE if current else StepOutcome.MISSING
        if step in current.completed_steps or current.failed:
            return StepOutcome.DUPLICATE
        # Same execution, step still pending: another writer touched the state; let the queue retry.
        raise ConcurrencyError(f"status of {state.index}/{state.document_id} changed while step {step} ran")

    async def _discard_stale_records(self, state: PipelineState) -> None:
        """Delete records an outdated execution may have written after the newer upload purged it."""
        if "save_records" not in state.steps:
            return
        try:
            await self.ctx.memory_db.delete_by_filter(
                state.index, {TAG_DOCUMENT_ID: [state.document_id], TAG_EXECUTION_ID: [state.execution_id]}
            )
        except NotFoundError:
            pass

    async def _dispatch(self, step: str, body: dict[str, Any]) -> None:
        if self.dispatcher is None:
            raise RuntimeError("the pipeline has no dispatcher: pass one to Pipeline(...)")
        await self.dispatcher.dispatch(step, body)

    # ------------------------------------------------------------ deletes

    async def request_delete_document(self, index: str, document_id: str) -> None:
        await self._dispatch(DELETE_DOCUMENT_STEP, {"index": index, "document_id": document_id})

    async def request_delete_index(self, index: str) -> None:
        await self._dispatch(DELETE_INDEX_STEP, {"index": index})

    async def delete_document_now(self, index: str, document_id: str) -> None:
        """Delete every record of the document, then its files and status."""
        try:
            deleted = await self.ctx.memory_db.delete_by_filter(index, {TAG_DOCUMENT_ID: [document_id]})
        except NotFoundError:
            deleted = 0
        await self.ctx.storage.delete_document(index, document_id)
        logger.info("deleted document %s/%s: %d records", index, document_id, deleted)

    async def delete_index_now(self, index: str) -> None:
        try:
            await self.ctx.memory_db.delete_index(index)
        except NotFoundError:
            pass
        await self.ctx.storage.delete_index(index)
        logger.info("deleted index %s", index)


def _finish(state: PipelineState) -> bool:
    """Set the final flags once no step remains."""
    failed_files = [file for file in state.files if file.error]
    if failed_files:
        state.failed = True
        state.error = "; ".join(f"{file.name}: {file.error}" for file in failed_files)
    state.completed = not state.failed
    state.empty = state.completed and all(file.empty for file in state.files)
    state.last_update = utc_now()
    return True

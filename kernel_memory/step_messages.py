"""What to do with one pipeline queue message, shared by the Functions triggers and the serve worker.

Delivery rules, the same whichever consumer runs them:

- the step succeeds, or drops a stale or duplicate message: the message is done;
- a transient error with deliveries left: the error propagates, so the queue
  delivers the message again;
- a transient error on the last delivery: the document is marked failed with
  the reason, and the error propagates, so the message moves to `{queue}-poison`;
- a permanent error (a malformed message, a bug): the document is marked
  failed at once and the message is done, as more deliveries cannot help.

The poison handler marks the document failed too, for the case where the
consumer died before it could (a timeout or a crash repeated on every delivery).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from kernel_memory.errors import KernelMemoryError, is_transient

if TYPE_CHECKING:
    from kernel_memory.pipeline.orchestrator import Pipeline, StepOutcome

logger = logging.getLogger(__name__)

# Pipeline and maintenance steps that have a queue each; the same as
# kernel_memory.pipeline.orchestrator.ALL_STEPS (a unit test keeps them equal),
# repeated here so registering the queue triggers imports no pipeline code.
QUEUE_STEPS = (
    "extract",
    "partition",
    "gen_embeddings",
    "save_records",
    "summarize",
    "private_delete_document",
    "private_delete_index",
)


def describe_error(error: BaseException) -> str:
    return str(error) if isinstance(error, KernelMemoryError) else f"{type(error).__name__}: {error}"


async def process_step_message(
    pipeline: Pipeline,
    step: str,
    body: dict[str, Any],
    *,
    dequeue_count: int,
    max_dequeue_count: int,
) -> StepOutcome:
    """Run `step` for the document `body` points to, applying the delivery rules above."""
    try:
        return await pipeline.run_step(step, body, dequeue_count=dequeue_count)
    except Exception as error:
        transient = is_transient(error)
        if transient and dequeue_count < max_dequeue_count:
            logger.warning(
                "step %s for %s/%s failed on delivery %d of %d, will retry: %s",
                step,
                body.get("index"),
                body.get("document_id"),
                dequeue_count,
                max_dequeue_count,
                describe_error(error),
            )
            raise

        reason = f"step {step} failed after {dequeue_count} deliveries: {describe_error(error)}"
        await _mark_failed_if_possible(pipeline, body, reason)
        if transient:
            raise
        logger.error("dropping message for step %s (%s): %s", step, _ids(body), reason)
        from kernel_memory.pipeline.orchestrator import StepOutcome

        return StepOutcome.FAILED


async def process_poison_message(
    pipeline: Pipeline, step: str, body: dict[str, Any], *, max_dequeue_count: int
) -> None:
    """Mark the document of a poisoned message failed, unless an earlier delivery already recorded why."""
    if "index" not in body or "document_id" not in body:
        logger.error("dropping poison message for step %s without index or document id: %s", step, body)
        return
    if step.startswith("private_delete"):
        # A failed delete leaves no document to mark; the log is the only trace.
        logger.error("deleting %s failed after %d deliveries; delete it again", _ids(body), max_dequeue_count)
        return

    state = await pipeline.states.try_load(body["index"], body["document_id"])
    if state is None:
        logger.info("poison message for %s: the document no longer exists", _ids(body))
        return
    if state.failed and state.execution_id == body.get("execution_id"):
        logger.info("poison message for %s: already failed with %r", _ids(body), state.error)
        return
    reason = (
        f"step {step} did not complete after {max_dequeue_count} deliveries"
        " (the step timed out or its worker stopped); the message was moved to the poison queue"
    )
    await pipeline.mark_failed(body, reason)


async def _mark_failed_if_possible(pipeline: Pipeline, body: dict[str, Any], reason: str) -> None:
    if "index" not in body or "document_id" not in body:
        return
    try:
        await pipeline.mark_failed(body, reason)
    except Exception as error:  # noqa: BLE001 - the poison handler marks the document later
        logger.warning("could not mark %s failed now (%s); the poison handler will", _ids(body), error)


def _ids(body: dict[str, Any]) -> str:
    return f"{body.get('index')}/{body.get('document_id')} execution {body.get('execution_id')}"

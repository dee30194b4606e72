"""In-process dispatcher: runs step messages on an asyncio worker, with the same retry rules as a queue."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from kernel_memory.pipeline.orchestrator import Pipeline

logger = logging.getLogger(__name__)


class InProcessDispatcher:
    """Queues step messages in memory and runs them one after another.

    A transient failure is retried after a short backoff until the message has
    been tried `max_dequeue_count` times, then the document is marked failed,
    as the poison queue handler would do.
    """

    def __init__(self, pipeline: Pipeline, *, retry_delay_seconds: float = 0.5) -> None:
        self._pipeline = pipeline
        self._retry_delay = retry_delay_seconds
        self._queue: asyncio.Queue[tuple[str, dict[str, Any], int]] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        pipeline.dispatcher = self

    async def dispatch(self, step: str, body: dict[str, Any]) -> None:
        self._ensure_worker()
        await self._queue.put((step, body, 1))

    async def drain(self) -> None:
        """Wait until every queued message, and the ones they queue in turn, has run."""
        if self._worker is None:
            return
        await self._queue.join()

    async def aclose(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass
            self._worker = None

    def _ensure_worker(self) -> None:
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._run(), name="km-in-process-pipeline")

    async def _run(self) -> None:
        max_attempts = self._pipeline.ctx.settings.queue.max_dequeue_count
        while True:
            step, body, attempt = await self._queue.get()
            try:
                await self._pipeline.run_step(step, body, dequeue_count=attempt)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - every failure is retried or recorded below
                if attempt < max_attempts:
                    await asyncio.sleep(self._retry_delay * attempt)
                    await self._queue.put((step, body, attempt + 1))
                else:
                    await self._pipeline.mark_failed(body, f"step {step} failed after {attempt} attempts: {error}")
                    logger.error("step %s gave up after %d attempts for %s: %s", step, attempt, body, error)
            finally:
                self._queue.task_done()

"""Queue worker of `kernel-memory serve`: polls every step queue and its poison queue, as the Functions host would.

One polling task per queue receives a batch and runs each message through the
same handler as the queue-triggered functions (kernel_memory/step_messages.py).
It applies the host's delivery rules. A message is deleted when it is done, made
visible again after a backoff when it failed with deliveries left, and moved to
`{queue}-poison` after `max_dequeue_count` deliveries. While a step
runs, its message's visibility timeout is renewed at half its length, so a
long step is not delivered to another consumer. `stop()` lets the current
messages finish, then the tasks exit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kernel_memory.errors import ConcurrencyError
from kernel_memory.queues import poison_queue_name, queue_name_for
from kernel_memory.queues.base import QueueMessage
from kernel_memory.step_messages import (
    QUEUE_STEPS,
    describe_error,
    process_poison_message,
    process_step_message,
)

if TYPE_CHECKING:
    from kernel_memory.memory import Memory
    from kernel_memory.pipeline.orchestrator import Dispatcher
    from kernel_memory.queues.azure_queue import AzureQueueClient

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class WorkerStats:
    """Counts since the worker started, for logs, tests and benchmarks."""

    processed: int = 0
    retried: int = 0
    poisoned: int = 0
    poison_handled: int = 0
    extended: int = 0
    # Messages received and not yet finished.
    in_flight: int = 0


class QueueWorker:
    def __init__(
        self,
        memory: Memory,
        consumer: AzureQueueClient,
        *,
        steps: Sequence[str] = QUEUE_STEPS,
        prefix: str | None = None,
        batch_size: int = 4,
        min_poll_seconds: float = 0.05,
        retry_delay_seconds: int = 2,
    ) -> None:
        queue_settings = memory.settings.queue
        self._memory = memory
        self._consumer = consumer
        self._prefix = prefix or queue_settings.prefix
        self._steps = tuple(steps)
        self._batch_size = batch_size
        self._max_dequeue_count = queue_settings.max_dequeue_count
        self._visibility_timeout = queue_settings.visibility_timeout_seconds
        # An idle queue is polled ever less often, from min_poll_seconds up to the configured interval.
        self._min_poll = min(min_poll_seconds, queue_settings.poll_interval_seconds)
        self._max_poll = queue_settings.poll_interval_seconds
        self._retry_delay = retry_delay_seconds
        self._stopping = asyncio.Event()
        # One event per step queue, set to end a poller's idle wait at once: on stop, or when
        # this process has just sent a message to that queue.
        self._wake: dict[str, asyncio.Event] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.stats = WorkerStats()

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start one polling task per step queue and per poison queue, in the running event loop.

        The memory's dispatcher is wrapped so that a message this process sends
        wakes the poller of its queue at once, instead of after its idle wait.
        """
        if self._tasks:
            return
        loop = asyncio.get_running_loop()
        self._wake = {step: asyncio.Event() for step in self._steps}
        pipeline = self._memory.pipeline
        if pipeline.dispatcher is not None and not isinstance(pipeline.dispatcher, _WakingDispatcher):
            pipeline.dispatcher = _WakingDispatcher(pipeline.dispatcher, self)
        for step in self._steps:
            queue_name = queue_name_for(step, self._prefix)
            self._tasks.append(
                loop.create_task(self._poll(step, queue_name, poison=False), name=f"km-{queue_name}")
            )
            poison_name = poison_queue_name(queue_name)
            self._tasks.append(
                loop.create_task(self._poll(step, poison_name, poison=True), name=f"km-{poison_name}")
            )
        logger.info(
            "queue worker started on %d queues with prefix %s (max %d deliveries)",
            len(self._tasks),
            self._prefix,
            self._max_dequeue_count,
        )

    def stop(self) -> None:
        """Ask the polling tasks to exit after the messages they hold are done."""
        self._stopping.set()
        for event in self._wake.values():
            event.set()

    def wake(self, step: str) -> None:
        """Poll the queue of `step` now: this process has just sent a message to it."""
        event = self._wake.get(step)
        if event is not None:
            event.set()

    async def wait(self) -> None:
        """Wait until every polling task has exited; re-raise a task's unexpected error."""
        if not self._tasks:
            return
        try:
            await asyncio.gather(*self._tasks)
        finally:
            self._tasks.clear()
        logger.info("queue worker stopped: %s", self.stats)

    async def run(self) -> None:
        """Poll until `stop()` is called."""
        self.start()
        await self.wait()

    # ------------------------------------------------------------ polling

    async def _poll(self, step: str, queue_name: str, *, poison: bool) -> None:
        delay = self._min_poll
        wake = asyncio.Event() if poison else self._wake[step]
        while not self._stopping.is_set():
            try:
                messages = await self._consumer.receive(
                    queue_name, max_messages=self._batch_size, visibility_timeout=self._visibility_timeout
                )
            except Exception as error:  # noqa: BLE001 - the storage service may be briefly unreachable; poll again
                logger.warning(
                    "receiving from %s failed, polling again in %.1f s: %s", queue_name, self._max_poll, error
                )
                await self._sleep(wake, self._max_poll)
                continue

            if not messages:
                woken = await self._sleep(wake, delay)
                delay = self._min_poll if woken else min(delay * 2, self._max_poll)
                continue
            delay = self._min_poll
            # The batch finishes even when stop() is called meanwhile: a started step is never abandoned.
            await asyncio.gather(
                *(self._handle_safely(step, queue_name, message, poison=poison) for message in messages)
            )

    async def _sleep(self, wake: asyncio.Event, seconds: float) -> bool:
        """Wait `seconds`, or less when woken; return whether the wait was cut short."""
        if self._stopping.is_set():
            return True
        try:
            await asyncio.wait_for(wake.wait(), timeout=seconds)
        except TimeoutError:
            return False
        wake.clear()
        return True

    # ------------------------------------------------------------ one message

    async def _handle_safely(
        self, step: str, queue_name: str, message: QueueMessage, *, poison: bool
    ) -> None:
        self.stats.in_flight += 1
        try:
            await self._handle(step, queue_name, message, poison=poison)
        except Exception as error:  # noqa: BLE001 - the message becomes visible again after its timeout
            logger.error(
                "handling message %s on %s failed; it will be delivered again: %s",
                message.id,
                queue_name,
                error,
            )
        finally:
            self.stats.in_flight -= 1

    async def _handle(self, step: str, queue_name: str, message: QueueMessage, *, poison: bool) -> None:
        if poison:
            await self._handle_poison(step, queue_name, message)
            return

        if message.dequeue_count > self._max_dequeue_count:
            # Earlier deliveries never finished (the worker stopped or the step hung), as the host would see it.
            await self._consumer.send_to_poison(queue_name, message)
            self.stats.poisoned += 1
            return

        step_done = asyncio.Event()
        renewal = asyncio.create_task(self._keep_hidden(queue_name, message, step_done))
        try:
            await process_step_message(
                self._memory.pipeline,
                step,
                message.body,
                dequeue_count=message.dequeue_count,
                max_dequeue_count=self._max_dequeue_count,
            )
        except Exception as error:  # noqa: BLE001 - the rules of step_messages decide: retry or poison
            await _finish_renewal(renewal, step_done)
            await self._after_failure(queue_name, message, error)
            return
        await _finish_renewal(renewal, step_done)
        await self._consumer.delete(queue_name, message)
        self.stats.processed += 1

    async def _after_failure(self, queue_name: str, message: QueueMessage, error: Exception) -> None:
        if message.dequeue_count >= self._max_dequeue_count:
            logger.error(
                "message %s on %s failed on its last delivery (%d): %s",
                message.id,
                queue_name,
                message.dequeue_count,
                describe_error(error),
            )
            await self._consumer.send_to_poison(queue_name, message)
            self.stats.poisoned += 1
            return

        # Back off exponentially, within the visibility timeout, before the next delivery.
        delay = min(self._retry_delay * 2 ** (message.dequeue_count - 1), self._visibility_timeout)
        try:
            await self._consumer.extend(queue_name, message, visibility_timeout=delay)
        except ConcurrencyError as lost:
            logger.warning("could not delay the retry of message %s: %s", message.id, lost)
        self.stats.retried += 1

    async def _handle_poison(self, step: str, queue_name: str, message: QueueMessage) -> None:
        try:
            await process_poison_message(
                self._memory.pipeline, step, message.body, max_dequeue_count=self._max_dequeue_count
            )
        except Exception as error:  # noqa: BLE001 - the poison message stays and is delivered again
            logger.error("poison message %s on %s could not be handled: %s", message.id, queue_name, error)
            return
        await self._consumer.delete(queue_name, message)
        self.stats.poison_handled += 1

    async def _keep_hidden(self, queue_name: str, message: QueueMessage, step_done: asyncio.Event) -> None:
        """Renew the message's visibility timeout at half its length until the step is done.

        The loop stops between renewals, never during one, so the pop receipt
        that a renewal returns is always recorded before the message is deleted.
        """
        interval = max(self._visibility_timeout / 2, 0.5)
        while not step_done.is_set():
            try:
                await asyncio.wait_for(step_done.wait(), timeout=interval)
                return
            except TimeoutError:
                pass
            try:
                await self._consumer.extend(queue_name, message, visibility_timeout=self._visibility_timeout)
            except ConcurrencyError as lost:
                # Another consumer may now run the same step; the pipeline tolerates that.
                logger.warning("lost message %s on %s while its step ran: %s", message.id, queue_name, lost)
                return
            except Exception as error:  # noqa: BLE001 - a failed renewal is tried again at the next interval
                logger.warning("renewing message %s on %s failed: %s", message.id, queue_name, error)
                continue
            self.stats.extended += 1
            logger.debug(
                "extended message %s on %s by %d s", message.id, queue_name, self._visibility_timeout
            )


async def _finish_renewal(renewal: asyncio.Task[None], step_done: asyncio.Event) -> None:
    step_done.set()
    await renewal


class _WakingDispatcher:
    """Sends through the wrapped dispatcher, then wakes the worker's poller of that step's queue."""

    def __init__(self, inner: Dispatcher, worker: QueueWorker) -> None:
        self._inner = inner
        self._worker = worker

    async def dispatch(self, step: str, body: dict[str, Any]) -> None:
        await self._inner.dispatch(step, body)
        self._worker.wake(step)

    async def aclose(self) -> None:
        close = getattr(self._inner, "aclose", None)
        if close is not None:
            await close()

"""Dispatcher that sends step messages to storage queues, one queue per step."""

from __future__ import annotations

import logging
from typing import Any

from kernel_memory.queues.base import QueueProducer

logger = logging.getLogger(__name__)


class QueueDispatcher:
    def __init__(self, producer: QueueProducer, *, prefix: str) -> None:
        self._producer = producer
        self._prefix = prefix

    async def dispatch(self, step: str, body: dict[str, Any]) -> None:
        from kernel_memory.queues import queue_name_for

        queue_name = queue_name_for(step, self._prefix)
        await self._producer.send(queue_name, body)
        logger.info(
            "sent %s message for %s/%s to queue %s",
            step,
            body.get("index"),
            body.get("document_id"),
            queue_name,
        )

    async def aclose(self) -> None:
        """Close the producer's connections, when it has any."""
        close = getattr(self._producer, "close", None)
        if close is not None:
            await close()

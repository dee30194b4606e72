"""Queue port: pointer messages between pipeline steps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(slots=True)
class QueueMessage:
    id: str
    # Decoded JSON body: `{"index", "document_id", "execution_id"}` for pipeline steps.
    body: dict[str, Any]
    # 1 on the first delivery.
    dequeue_count: int = 1
    # Adapter data needed to delete or extend the message (Azure's pop receipt).
    receipt: str | None = None


class QueueProducer(Protocol):
    async def send(self, queue_name: str, body: dict[str, Any]) -> None: ...


class QueueConsumer(Protocol):
    async def receive(self, queue_name: str, *, max_messages: int, visibility_timeout: int) -> list[QueueMessage]: ...

    async def delete(self, queue_name: str, message: QueueMessage) -> None:
        """Remove a processed message; no error when it is gone or was delivered again since."""
        ...

    async def extend(self, queue_name: str, message: QueueMessage, *, visibility_timeout: int) -> None:
        """Keep a message hidden longer while a slow step still works on it.

        Stores the new receipt in `message`. Raises `ConcurrencyError` when the message
        became visible and was delivered again, so this consumer's receipt is no longer valid.
        """
        ...

    async def send_to_poison(self, queue_name: str, message: QueueMessage) -> None:
        """Move a message that exhausted its deliveries to `{queue_name}-poison`.

        The body is sent unchanged, as the Functions host does, then the message is
        deleted from `queue_name`.
        """
        ...

"""Pipeline queues on Azure Storage Queues (or Azurite), readable by Functions queue triggers.

Message text is encoded as host.json `messageEncoding` specifies (see `encoding.py`), so
a message sent here is what a queue-triggered function expects, and a message
the Functions host would accept is what `receive` decodes.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Self

from kernel_memory.azure_auth import create_queue_service_client
from kernel_memory.azure_errors import azure_errors
from kernel_memory.errors import ConcurrencyError, InvalidRequestError, NotFoundError
from kernel_memory.queues.base import QueueMessage
from kernel_memory.queues.encoding import decode_message, encode_message
from kernel_memory.queues.names import poison_queue_name, validate_queue_name
from kernel_memory.settings import QueueSettings

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential
    from azure.storage.queue.aio import QueueClient, QueueServiceClient

logger = logging.getLogger(__name__)

# The service returns at most 32 messages per request.
_MAX_MESSAGES_PER_REQUEST = 32


class AzureQueueClient:
    """`QueueProducer` and `QueueConsumer` on Azure Storage Queues; queues are created on first use."""

    def __init__(self, settings: QueueSettings) -> None:
        self._settings = settings
        self.encoding = settings.message_encoding
        self._service: QueueServiceClient | None = None
        self._credential: AsyncTokenCredential | None = None
        self._connect_lock = asyncio.Lock()
        self._clients: dict[str, QueueClient] = {}
        # Queues known to exist, so `create_queue` is sent once per queue and client, not before every call.
        self._existing: set[str] = set()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the queue clients, the service client and the credential."""
        for client in self._clients.values():
            await client.close()
        if self._service is not None:
            await self._service.close()
        if self._credential is not None:
            await self._credential.close()
        self._clients.clear()
        self._existing.clear()
        self._service = self._credential = None

    # ------------------------------------------------------------ clients

    async def _service_client(self) -> QueueServiceClient:
        if self._service is None:
            async with self._connect_lock:
                if self._service is None:
                    self._service, self._credential = create_queue_service_client(
                        self._settings.azure, setting_prefix="KM_QUEUE__AZURE"
                    )
        return self._service

    async def _queue(self, queue_name: str) -> QueueClient:
        from azure.core.exceptions import ResourceExistsError

        client = self._clients.get(queue_name)
        if client is None:
            validate_queue_name(queue_name)
            service = await self._service_client()
            client = self._clients.setdefault(queue_name, service.get_queue_client(queue_name))

        if queue_name not in self._existing:
            with azure_errors(f"create queue {queue_name}"):
                try:
                    await client.create_queue()
                    logger.info("created queue %s", queue_name)
                except ResourceExistsError:
                    pass
            self._existing.add(queue_name)
        return client

    def _forget_if_missing(self, queue_name: str, error: NotFoundError) -> bool:
        """Forget that `queue_name` exists when `error` is QueueNotFound, and return whether it was."""
        if getattr(error.__cause__, "error_code", None) == "QueueNotFound":
            self._existing.discard(queue_name)
            return True
        return False

    # ------------------------------------------------------------ producer

    async def send(self, queue_name: str, body: dict[str, Any]) -> None:
        text = encode_message(body, self.encoding)
        await self._send_text(queue_name, text)
        logger.debug("sent message to %s for %s/%s", queue_name, body.get("index"), body.get("document_id"))

    async def _send_text(self, queue_name: str, text: str) -> None:
        # A queue deleted since this client created it is created again, once.
        for attempt in (1, 2):
            client = await self._queue(queue_name)
            try:
                with azure_errors(f"send message to queue {queue_name}"):
                    await client.send_message(text)
                return
            except NotFoundError as error:
                if attempt == 2 or not self._forget_if_missing(queue_name, error):
                    raise

    # ------------------------------------------------------------ consumer

    async def receive(
        self, queue_name: str, *, max_messages: int, visibility_timeout: int
    ) -> list[QueueMessage]:
        """Return up to `max_messages` messages, hidden from other consumers for `visibility_timeout` seconds.

        A message whose text cannot be decoded is moved to the poison queue at once,
        because no number of deliveries would make it readable.
        """
        if max_messages < 1:
            raise InvalidRequestError(f"max_messages is {max_messages}; it must be at least 1")

        client = await self._queue(queue_name)
        try:
            with azure_errors(f"receive messages from queue {queue_name}"):
                pages = client.receive_messages(
                    messages_per_page=min(max_messages, _MAX_MESSAGES_PER_REQUEST),
                    max_messages=max_messages,
                    visibility_timeout=visibility_timeout,
                )
                received = [message async for message in pages]
        except NotFoundError as error:
            # A deleted queue contains no messages, and the next call creates it again.
            if self._forget_if_missing(queue_name, error):
                return []
            raise

        messages = []
        for raw in received:
            try:
                body = decode_message(raw.content, self.encoding)
            except InvalidRequestError as error:
                await self._quarantine(queue_name, raw.id, raw.pop_receipt, raw.content, error)
                continue
            messages.append(
                QueueMessage(
                    id=raw.id, body=body, dequeue_count=raw.dequeue_count or 1, receipt=raw.pop_receipt
                )
            )
        return messages

    async def _quarantine(
        self, queue_name: str, message_id: str, receipt: str, text: str, error: InvalidRequestError
    ) -> None:
        poison_name = poison_queue_name(queue_name)
        logger.error(
            "moving undecodable message %s from %s to %s: %s", message_id, queue_name, poison_name, error
        )
        await self._send_text(poison_name, text)
        await self._delete_by_id(queue_name, message_id, receipt)

    async def delete(self, queue_name: str, message: QueueMessage) -> None:
        await self._delete_by_id(queue_name, message.id, _receipt_of(message))

    async def _delete_by_id(self, queue_name: str, message_id: str, receipt: str) -> None:
        from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

        client = await self._queue(queue_name)
        with azure_errors(f"delete message {message_id} from queue {queue_name}"):
            try:
                await client.delete_message(message_id, receipt)
            except ResourceNotFoundError:
                logger.warning("message %s was already deleted from %s", message_id, queue_name)
            except HttpResponseError as error:
                if not _is_pop_receipt_mismatch(error):
                    raise
                # The visibility timeout ran out and another consumer received the message.
                # That consumer processes it again, which the pipeline steps tolerate.
                logger.warning(
                    "message %s on %s was delivered again before it was deleted", message_id, queue_name
                )

    async def extend(self, queue_name: str, message: QueueMessage, *, visibility_timeout: int) -> None:
        from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

        client = await self._queue(queue_name)
        lost = (
            f"message {message.id} on queue {queue_name} is no longer held by this consumer:"
            " its visibility timeout ran out before it was extended"
        )
        with azure_errors(f"extend message {message.id} on queue {queue_name}"):
            try:
                updated = await client.update_message(
                    message.id, pop_receipt=_receipt_of(message), visibility_timeout=visibility_timeout
                )
            except ResourceNotFoundError:
                raise ConcurrencyError(lost) from None
            except HttpResponseError as error:
                if _is_pop_receipt_mismatch(error):
                    raise ConcurrencyError(lost) from None
                raise
        # Each update returns a new pop receipt, and the old one no longer deletes the message.
        message.receipt = updated.pop_receipt

    async def send_to_poison(self, queue_name: str, message: QueueMessage) -> None:
        poison_name = poison_queue_name(queue_name)
        await self.send(poison_name, message.body)
        await self.delete(queue_name, message)
        logger.warning(
            "moved message %s for %s/%s from %s to %s after %d deliveries",
            message.id,
            message.body.get("index"),
            message.body.get("document_id"),
            queue_name,
            poison_name,
            message.dequeue_count,
        )


def _receipt_of(message: QueueMessage) -> str:
    if not message.receipt:
        raise InvalidRequestError(
            f"message {message.id} has no pop receipt: pass a message returned by receive()"
        )
    return message.receipt


def _is_pop_receipt_mismatch(error: Exception) -> bool:
    # `error_code` is a str enum, equal to the service's code string.
    return getattr(error, "error_code", None) == "PopReceiptMismatch"

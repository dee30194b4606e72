"""Azure Storage Queue adapter against Azurite: delivery, visibility, poison, and the Functions host's encoding."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import SecretStr

from kernel_memory.errors import ConcurrencyError, InvalidRequestError
from kernel_memory.queues import QueueMessage, queue_name_for
from kernel_memory.queues.azure_queue import AzureQueueClient
from kernel_memory.settings import AzureStorageSettings, QueueSettings

pytestmark = pytest.mark.azurite

BODY = {"index": "default", "document_id": "doc-1", "execution_id": "e1", "note": "<&> 日本 ✓"}
# Upper bound for waits on Azurite. The polls return as soon as the condition is met.
DEADLINE_SECONDS = 15.0


def _settings(connection_string: str, *, encoding: str = "base64") -> QueueSettings:
    return QueueSettings(
        type="azure_queue",
        message_encoding=encoding,
        azure=AzureStorageSettings(connection_string=SecretStr(connection_string)),
    )


async def _delete_queues(connection_string: str, prefix: str) -> None:
    from azure.storage.queue.aio import QueueServiceClient

    async with QueueServiceClient.from_connection_string(connection_string) as service:
        names = [queue.name async for queue in service.list_queues(name_starts_with=prefix)]
        for name in names:
            await service.delete_queue(name)


@pytest.fixture
def prefix() -> str:
    return f"kmt{uuid.uuid4().hex[:10]}"


@pytest.fixture
def queue_name(prefix: str) -> str:
    return queue_name_for("gen_embeddings", prefix)


@pytest.fixture
async def queues(azurite_connection_string: str, prefix: str) -> AsyncIterator[AzureQueueClient]:
    async with AzureQueueClient(_settings(azurite_connection_string)) as client:
        yield client
    await _delete_queues(azurite_connection_string, prefix)


async def _raw_texts(connection_string: str, queue_name: str) -> list[str]:
    """Read message texts with a plain QueueClient without an encode or decode policy, as stored."""
    from azure.storage.queue.aio import QueueClient

    async with QueueClient.from_connection_string(connection_string, queue_name) as client:
        return [
            message.content
            async for message in client.receive_messages(max_messages=32, visibility_timeout=30)
        ]


async def _receive_within(
    queues: AzureQueueClient, queue_name: str, *, visibility_timeout: int = 30
) -> list[QueueMessage]:
    """Poll until a message is visible, up to the deadline."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        messages = await queues.receive(queue_name, max_messages=32, visibility_timeout=visibility_timeout)
        if messages:
            return messages
        await asyncio.sleep(0.1)
    raise AssertionError(f"no message became visible on {queue_name} within {DEADLINE_SECONDS} s")


async def _approximate_count(connection_string: str, queue_name: str) -> int:
    from azure.storage.queue.aio import QueueClient

    async with QueueClient.from_connection_string(connection_string, queue_name) as client:
        properties = await client.get_queue_properties()
    return properties.approximate_message_count


# ---------------------------------------------------------------- delivery


async def test_queue_send_receive_delete(
    queues: AzureQueueClient, queue_name: str, azurite_connection_string: str
) -> None:
    await queues.send(queue_name, BODY)
    [message] = await queues.receive(queue_name, max_messages=10, visibility_timeout=30)
    assert message.body == BODY
    assert message.dequeue_count == 1
    await queues.delete(queue_name, message)
    assert await _approximate_count(azurite_connection_string, queue_name) == 0


async def test_queue_receive_empty(queues: AzureQueueClient, queue_name: str) -> None:
    assert await queues.receive(queue_name, max_messages=5, visibility_timeout=30) == []


async def test_queue_received_message_hidden(queues: AzureQueueClient, queue_name: str) -> None:
    await queues.send(queue_name, BODY)
    await queues.receive(queue_name, max_messages=1, visibility_timeout=30)
    assert await queues.receive(queue_name, max_messages=1, visibility_timeout=30) == []


async def test_queue_receive_more_than_32(queues: AzureQueueClient, queue_name: str) -> None:
    await asyncio.gather(*(queues.send(queue_name, {"n": number}) for number in range(40)))
    messages = await queues.receive(queue_name, max_messages=40, visibility_timeout=30)
    assert sorted(message.body["n"] for message in messages) == list(range(40))


async def test_queue_redelivery_increments_dequeue_count(queues: AzureQueueClient, queue_name: str) -> None:
    await queues.send(queue_name, BODY)
    [first] = await queues.receive(queue_name, max_messages=1, visibility_timeout=1)
    [second] = await _receive_within(queues, queue_name, visibility_timeout=30)
    assert second.id == first.id
    assert second.dequeue_count == 2


async def test_queue_delete_after_redelivery_no_error(queues: AzureQueueClient, queue_name: str) -> None:
    await queues.send(queue_name, BODY)
    [first] = await queues.receive(queue_name, max_messages=1, visibility_timeout=1)
    [second] = await _receive_within(queues, queue_name, visibility_timeout=30)
    await queues.delete(queue_name, first)
    await queues.delete(queue_name, second)
    await queues.delete(queue_name, second)


async def test_queue_extend_changes_receipt(queues: AzureQueueClient, queue_name: str) -> None:
    await queues.send(queue_name, BODY)
    [message] = await queues.receive(queue_name, max_messages=1, visibility_timeout=30)
    old_receipt = message.receipt
    await queues.extend(queue_name, message, visibility_timeout=60)
    assert message.receipt != old_receipt


async def test_queue_extend_keeps_message_hidden(
    queues: AzureQueueClient, queue_name: str, azurite_connection_string: str
) -> None:
    await queues.send(queue_name, BODY)
    [message] = await queues.receive(queue_name, max_messages=1, visibility_timeout=1)
    await queues.extend(queue_name, message, visibility_timeout=60)

    # After 3 s the original timeout of 1 s has long passed, but the extension must still hide the message.
    waited_until = time.monotonic() + 3.0
    while time.monotonic() < waited_until:
        assert await queues.receive(queue_name, max_messages=1, visibility_timeout=30) == []
        await asyncio.sleep(0.2)

    await queues.delete(queue_name, message)
    assert await _approximate_count(azurite_connection_string, queue_name) == 0


async def test_queue_extend_after_redelivery_conflict(queues: AzureQueueClient, queue_name: str) -> None:
    await queues.send(queue_name, BODY)
    [first] = await queues.receive(queue_name, max_messages=1, visibility_timeout=1)
    await _receive_within(queues, queue_name, visibility_timeout=30)
    with pytest.raises(ConcurrencyError, match="no longer held"):
        await queues.extend(queue_name, first, visibility_timeout=30)


async def test_queue_send_to_poison(
    queues: AzureQueueClient, queue_name: str, azurite_connection_string: str
) -> None:
    await queues.send(queue_name, BODY)
    [message] = await queues.receive(queue_name, max_messages=1, visibility_timeout=30)
    await queues.send_to_poison(queue_name, message)

    [poisoned] = await queues.receive(f"{queue_name}-poison", max_messages=5, visibility_timeout=30)
    assert poisoned.body == BODY
    assert await _approximate_count(azurite_connection_string, queue_name) == 0


async def test_queue_undecodable_message_poisoned(
    queues: AzureQueueClient, queue_name: str, azurite_connection_string: str
) -> None:
    from azure.storage.queue.aio import QueueClient

    await queues.send(queue_name, BODY)
    async with QueueClient.from_connection_string(azurite_connection_string, queue_name) as plain:
        await plain.send_message("not base64 {}")

    messages = await queues.receive(queue_name, max_messages=10, visibility_timeout=30)
    assert [message.body for message in messages] == [BODY]
    assert await _raw_texts(azurite_connection_string, f"{queue_name}-poison") == ["not base64 {}"]


async def test_queue_oversized_body_not_sent(
    queues: AzureQueueClient, queue_name: str, azurite_connection_string: str
) -> None:
    with pytest.raises(InvalidRequestError, match="maximum is 65536"):
        await queues.send(queue_name, {"state": "x" * 60_000})
    assert await queues.receive(queue_name, max_messages=1, visibility_timeout=30) == []


async def test_queue_recreated_after_deletion(
    queues: AzureQueueClient, queue_name: str, azurite_connection_string: str
) -> None:
    await queues.send(queue_name, {"n": 1})
    await _delete_queues(azurite_connection_string, queue_name)
    await queues.send(queue_name, {"n": 2})
    [message] = await queues.receive(queue_name, max_messages=5, visibility_timeout=30)
    assert message.body == {"n": 2}


# ---------------------------------------------------------------- encoding as the Functions host reads it


def _decode_as_host(text: str, encoding: str) -> dict[str, Any]:
    """Decode as the Functions host does before the function runs: base64, then UTF-8, then JSON."""
    payload = base64.b64decode(text).decode("utf-8") if encoding == "base64" else text
    return json.loads(payload)


@pytest.mark.parametrize("encoding", ["base64", "none"])
async def test_queue_text_matches_host_encoding(
    azurite_connection_string: str, queue_name: str, prefix: str, encoding: str
) -> None:
    async with AzureQueueClient(_settings(azurite_connection_string, encoding=encoding)) as producer:
        await producer.send(queue_name, BODY)
    try:
        [text] = await _raw_texts(azurite_connection_string, queue_name)
    finally:
        await _delete_queues(azurite_connection_string, prefix)
    assert _decode_as_host(text, encoding) == BODY


async def test_queue_base64_text_is_not_json(
    azurite_connection_string: str, queue_name: str, prefix: str
) -> None:
    async with AzureQueueClient(_settings(azurite_connection_string, encoding="base64")) as producer:
        await producer.send(queue_name, BODY)
    try:
        [text] = await _raw_texts(azurite_connection_string, queue_name)
    finally:
        await _delete_queues(azurite_connection_string, prefix)
    assert not text.startswith("{")


@pytest.mark.parametrize("encoding", ["base64", "none"])
async def test_queue_reads_host_style_message(
    azurite_connection_string: str, queue_name: str, prefix: str, encoding: str
) -> None:
    from azure.storage.queue.aio import QueueClient

    payload = json.dumps(BODY)
    text = base64.b64encode(payload.encode()).decode() if encoding == "base64" else payload
    try:
        async with QueueClient.from_connection_string(azurite_connection_string, queue_name) as plain:
            await plain.create_queue()
            await plain.send_message(text)
        async with AzureQueueClient(_settings(azurite_connection_string, encoding=encoding)) as consumer:
            [message] = await consumer.receive(queue_name, max_messages=1, visibility_timeout=30)
    finally:
        await _delete_queues(azurite_connection_string, prefix)
    assert message.body == BODY

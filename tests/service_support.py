"""Helpers for the HTTP, Functions and worker tests: settings, a Memory with a fast embedder, status polling."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import math
import re
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import httpx

from kernel_memory.memory import Memory
from kernel_memory.pipeline.context import PipelineContext
from kernel_memory.settings import Settings

_WORD = re.compile(r"\w+", re.UNICODE)


class HashEmbedder:
    """Bag-of-words vectors from hashed words: no model, deterministic, lexical similarity only.

    The HTTP and queue tests check plumbing, not ranking quality, so they use this
    in place of the local model, which takes seconds per batch on a small machine.
    """

    model_id = "test-hash-512"
    max_input_tokens = 8000
    dimensions = 512

    def __init__(self) -> None:
        self.calls = 0

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls += 1
        return [self._vector(text) for text in texts]

    async def embed_query(self, text: str) -> list[float]:
        self.calls += 1
        return self._vector(text)

    def _vector(self, text: str) -> list[float]:
        vector = [0.0] * self.dimensions
        for word in _WORD.findall(text.lower()):
            digest = hashlib.blake2b(word.encode(), digest_size=4).digest()
            vector[int.from_bytes(digest, "little") % self.dimensions] += 1.0
        norm = math.sqrt(sum(value * value for value in vector)) or 1.0
        return [value / norm for value in vector]


def local_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Settings on the embedded defaults inside `data_dir`."""
    return Settings(data_dir=data_dir, **overrides)


def azurite_settings(data_dir: Path, connection_string: str, **overrides: Any) -> Settings:
    """Settings on Azurite blobs and queues, with a container and queue prefix unique to the caller."""
    unique = uuid.uuid4().hex[:10]
    azure = {"connection_string": connection_string}
    storage = {
        "type": "azure_blob",
        "container": f"km-{unique}",
        "inbox_container": f"inbox-{unique}",
        "azure": azure,
    }
    queue = {
        "type": "azure_queue",
        "prefix": f"t{unique}",
        "azure": azure,
        "poll_interval_seconds": 0.2,
        "visibility_timeout_seconds": 30,
    }
    queue.update(overrides.pop("queue", {}))
    return Settings(data_dir=data_dir, storage=storage, queue=queue, **overrides)


def build_memory(settings: Settings, *, embedder: Any | None = None, dispatcher: Any | None = None) -> Memory:
    """Build a Memory like `Memory.from_settings`, with the hash embedder unless another is given."""
    from kernel_memory.ai.factory import build_text_generator
    from kernel_memory.memorydb.factory import build_memory_db
    from kernel_memory.storage.factory import build_document_storage

    ctx = PipelineContext(
        settings=settings,
        storage=build_document_storage(settings),
        memory_db=build_memory_db(settings),
        embedder=embedder or HashEmbedder(),
        text_generator=build_text_generator(settings),
    )
    if dispatcher is None and settings.queue.type == "azure_queue":
        from kernel_memory.queues import build_queue_client
        from kernel_memory.queues.dispatcher import QueueDispatcher

        dispatcher = QueueDispatcher(build_queue_client(settings), prefix=settings.queue.prefix)
    return Memory(settings, ctx, dispatcher=dispatcher)


async def wait_for_status(
    client: httpx.AsyncClient,
    document_id: str,
    *,
    index: str | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> dict[str, Any]:
    """Poll /upload-status until the document is completed or failed; fail at the deadline."""
    params = {"documentId": document_id}
    if index:
        params["index"] = index
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = await client.get("/upload-status", params=params, headers=headers)
        if response.status_code == 200:
            last = response.json()
            if last["completed"] or last["failed"]:
                return last
        await asyncio.sleep(0.1)
    raise AssertionError(
        f"document {index}/{document_id} did not finish within {timeout} s; last status {last}"
    )


async def wait_until_gone(
    client: httpx.AsyncClient, document_id: str, *, index: str | None = None, timeout: float = 30.0
) -> None:
    """Poll /upload-status until it returns 404; fail at the deadline."""
    params = {"documentId": document_id, **({"index": index} if index else {})}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (await client.get("/upload-status", params=params)).status_code == 404:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"document {index}/{document_id} still exists after {timeout} s")


# ---------------------------------------------------------------- Azurite


@contextlib.asynccontextmanager
async def running_service(
    settings: Settings,
    *,
    embedder: Any | None = None,
    start_worker: bool = True,
    headers: dict[str, str] | None = None,
    **worker_options: Any,
) -> AsyncIterator[Service]:
    """The serve app on an httpx client and a QueueWorker in this event loop, against Azurite.

    On exit the worker finishes its messages, and the test's queues and containers are deleted.
    """
    from kernel_memory.http.app import create_app
    from kernel_memory.queues import build_queue_client
    from kernel_memory.worker import QueueWorker

    memory = build_memory(settings, embedder=embedder)
    consumer = build_queue_client(settings)
    worker_options.setdefault("retry_delay_seconds", 0)
    worker = QueueWorker(memory, consumer, **worker_options)
    if start_worker:
        worker.start()
    app = create_app(settings, memory=memory)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test", headers=headers) as client:
            yield Service(client=client, memory=memory, worker=worker, consumer=consumer, settings=settings)
    finally:
        worker.stop()
        await worker.wait()
        await consumer.close()
        await memory.aclose()
        await delete_azure_resources(settings)


@dataclasses.dataclass
class Service:
    client: httpx.AsyncClient
    memory: Memory
    worker: Any
    consumer: Any
    settings: Settings

    async def queue_counts(self) -> dict[str, int]:
        """Messages per queue of this test's prefix, invisible ones included."""
        from azure.storage.queue.aio import QueueServiceClient

        connection = self.settings.queue.azure.connection_string.get_secret_value()
        counts = {}
        async with QueueServiceClient.from_connection_string(connection) as service:
            async for queue in service.list_queues(name_starts_with=self.settings.queue.prefix + "-"):
                properties = await service.get_queue_client(queue.name).get_queue_properties()
                counts[queue.name] = properties.approximate_message_count
        return counts

    async def wait_until_idle(self, *, timeout: float = 60.0) -> None:
        """Poll until every queue of this test is empty and the worker has no message in progress."""
        deadline = time.monotonic() + timeout
        counts: dict[str, int] = {}
        while time.monotonic() < deadline:
            counts = await self.queue_counts()
            if not any(counts.values()) and self.worker.stats.in_flight == 0:
                return
            await asyncio.sleep(0.2)
        raise AssertionError(f"queues still busy after {timeout} s: {counts}")


async def delete_azure_resources(settings: Settings) -> None:
    """Delete the queues and containers a test created in Azurite."""
    from azure.storage.blob.aio import BlobServiceClient
    from azure.storage.queue.aio import QueueServiceClient

    connection = settings.queue.azure.connection_string.get_secret_value()
    async with QueueServiceClient.from_connection_string(connection) as queues:
        async for queue in queues.list_queues(name_starts_with=settings.queue.prefix + "-"):
            await queues.delete_queue(queue.name)
    async with BlobServiceClient.from_connection_string(connection) as blobs:
        for container in (settings.storage.container, settings.storage.inbox_container):
            with contextlib.suppress(Exception):
                await blobs.delete_container(container)

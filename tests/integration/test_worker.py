"""The serve worker on Azurite queues: redelivery, re-upload, poison, visibility renewal and graceful stop."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from kernel_memory.errors import TransientError
from kernel_memory.queues import queue_name_for
from kernel_memory.queues.dispatcher import QueueDispatcher
from tests.service_support import (
    HashEmbedder,
    azurite_settings,
    delete_azure_resources,
    running_service,
    wait_for_status,
)

pytestmark = [pytest.mark.azurite]

PIPELINE = ("extract", "partition", "gen_embeddings", "save_records")


class SlowEmbedder(HashEmbedder):
    """Takes `delay` seconds per call, like a model under load; `started` is set on the first call."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay
        self.started = asyncio.Event()

    async def embed_documents(self, texts):
        self.started.set()
        await asyncio.sleep(self.delay)
        return await super().embed_documents(texts)


class DownEmbedder(HashEmbedder):
    async def embed_documents(self, texts):
        self.calls += 1
        raise TransientError("embedding service returned 503")


async def _upload(client, document_id, text, **form):
    files = [("file", (f"{document_id}.txt", text.encode(), "text/plain"))]
    response = await client.post("/upload", files=files, data={"documentId": document_id, **form})
    assert response.status_code == 202, response.text
    return response


async def _record_ids(memory, document_id, index="default"):
    records = await memory.ctx.memory_db.get_list(
        index, filters=[{"__document_id": [document_id]}], limit=10_000
    )
    return sorted(record.id for record in records)


async def test_worker_replayed_messages_change_nothing(tmp_path, azurite_connection_string):
    settings = azurite_settings(
        tmp_path,
        azurite_connection_string,
        partitioning={"max_tokens_per_paragraph": 40, "overlapping_tokens": 5},
    )
    text = " ".join(f"Sentence {i} describes the harbour and its lighthouse." for i in range(40))
    async with running_service(settings) as service:
        await _upload(service.client, "replayed", text)
        before = await wait_for_status(service.client, "replayed")
        await service.wait_until_idle()
        ids_before = await _record_ids(service.memory, "replayed")

        # Every step's message again, as a queue may deliver a message twice.
        state = await service.memory.get_status(None, "replayed")
        dispatcher = QueueDispatcher(service.consumer, prefix=settings.queue.prefix)
        body = {"index": state.index, "document_id": state.document_id, "execution_id": state.execution_id}
        for step in PIPELINE:
            await dispatcher.dispatch(step, body)
        await service.wait_until_idle()
        after = await wait_for_status(service.client, "replayed")
        ids_after = await _record_ids(service.memory, "replayed")

    assert before["completed"] is True
    assert len(ids_before) > 1
    assert ids_after == ids_before
    assert after["completed_steps"] == before["completed_steps"]
    assert after["last_update"] == before["last_update"]


async def test_worker_reupload_during_processing_keeps_only_v2(tmp_path, azurite_connection_string):
    settings = azurite_settings(
        tmp_path,
        azurite_connection_string,
        partitioning={"max_tokens_per_paragraph": 40, "overlapping_tokens": 5},
    )
    v1 = " ".join(f"Version one paragraph {i} mentions the zeppelin hangar." for i in range(60))
    v2 = "Version two is short and mentions only the bicycle shed."
    embedder = SlowEmbedder(delay=0.3)
    async with running_service(settings, embedder=embedder) as service:
        await _upload(service.client, "manual", v1)
        await asyncio.wait_for(embedder.started.wait(), timeout=60)
        await _upload(service.client, "manual", v2)
        status = await wait_for_status(service.client, "manual", timeout=120)
        await service.wait_until_idle(timeout=120)
        v1_hits = await service.client.post(
            "/search", json={"query": "zeppelin hangar", "filters": [{"__document_id": ["manual"]}]}
        )
        v2_hits = await service.client.post(
            "/search", json={"query": "bicycle shed", "filters": [{"__document_id": ["manual"]}]}
        )
        ids = await _record_ids(service.memory, "manual")

    texts = [p["text"] for c in v1_hits.json()["results"] for p in c["partitions"]]
    assert status["completed"] is True
    assert [t for t in texts if "zeppelin" in t] == []
    assert v2_hits.json()["results"]
    assert len(ids) == 1


async def test_worker_crashed_deliveries_go_to_poison_and_fail(tmp_path, azurite_connection_string):
    settings = azurite_settings(tmp_path, azurite_connection_string, queue={"max_dequeue_count": 3})
    async with running_service(settings, start_worker=False) as service:
        await _upload(service.client, "crashy", "A document whose consumers keep dying.")
        queue = queue_name_for("extract", settings.queue.prefix)
        # Three consumers receive the message and die before finishing it.
        for _ in range(3):
            received = []
            while not received:
                received = await service.consumer.receive(queue, max_messages=1, visibility_timeout=30)
            await service.consumer.extend(queue, received[0], visibility_timeout=0)

        service.worker.start()
        status = await wait_for_status(service.client, "crashy", timeout=60)
        await service.wait_until_idle()

    assert status["failed"] is True
    assert "did not complete after 3 deliveries" in status["error"]
    assert service.worker.stats.poisoned == 1
    assert service.worker.stats.poison_handled == 1


async def test_worker_always_failing_step_fails_after_attempts(tmp_path, azurite_connection_string):
    settings = azurite_settings(tmp_path, azurite_connection_string, queue={"max_dequeue_count": 3})
    embedder = DownEmbedder()
    async with running_service(settings, embedder=embedder) as service:
        await _upload(service.client, "doomed", "The embedding service never answers this one.")
        status = await wait_for_status(service.client, "doomed", timeout=60)
        await service.wait_until_idle()

    assert status["failed"] is True
    assert "gen_embeddings" in status["error"]
    assert "503" in status["error"]
    assert embedder.calls == 3
    assert service.worker.stats.retried == 2


async def test_worker_extends_visibility_of_long_step(tmp_path, azurite_connection_string):
    settings = azurite_settings(tmp_path, azurite_connection_string, queue={"visibility_timeout_seconds": 2})
    embedder = SlowEmbedder(delay=4)
    async with running_service(settings, embedder=embedder) as service:
        await _upload(service.client, "slow", "One short paragraph that takes long to embed.")
        status = await wait_for_status(service.client, "slow", timeout=60)

    assert status["completed"] is True
    assert service.worker.stats.extended >= 2
    # No other delivery ran the step while the first one was still working on it.
    assert embedder.calls == 1


async def test_worker_stop_finishes_current_message(tmp_path, azurite_connection_string):
    settings = azurite_settings(tmp_path, azurite_connection_string)
    embedder = SlowEmbedder(delay=2)
    async with running_service(settings, embedder=embedder) as service:
        await _upload(service.client, "stopping", "A paragraph embedded while the worker is asked to stop.")
        await asyncio.wait_for(embedder.started.wait(), timeout=60)
        service.worker.stop()
        await service.worker.wait()
        state = await service.memory.get_status(None, "stopping")
        counts = await service.queue_counts()

    prefix = settings.queue.prefix
    assert "gen_embeddings" in state.completed_steps
    assert counts[queue_name_for("gen_embeddings", prefix)] == 0
    assert counts[queue_name_for("save_records", prefix)] == 1


@pytest.mark.slow
async def test_serve_stops_gracefully_on_sigterm(tmp_path, azurite_connection_string):
    settings = azurite_settings(tmp_path, azurite_connection_string)
    port = _free_port()
    env = {
        **os.environ,
        "KM_DATA_DIR": str(tmp_path / "data"),
        "KM_HTTP__PORT": str(port),
        "KM_STORAGE__TYPE": "azure_blob",
        "KM_STORAGE__CONTAINER": settings.storage.container,
        "KM_STORAGE__AZURE__CONNECTION_STRING": azurite_connection_string,
        "KM_QUEUE__TYPE": "azure_queue",
        "KM_QUEUE__PREFIX": settings.queue.prefix,
        "KM_QUEUE__AZURE__CONNECTION_STRING": azurite_connection_string,
        "KM_QUEUE__POLL_INTERVAL_SECONDS": "0.2",
    }
    # The log goes to a file, because an unread pipe would fill up and block the server.
    log_path = tmp_path / "serve.log"
    log = log_path.open("w", encoding="utf-8")
    process = subprocess.Popen(  # noqa: ASYNC220 - a child process for the whole test, not awaited I/O
        [sys.executable, "-m", "kernel_memory", "--verbose", "serve"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            await _wait_for_health(client, process)
            await _upload(client, "served", "A document served by a separate process.")
            status = await wait_for_status(client, "served", timeout=180)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()
        await delete_azure_resources(settings)

    output = log_path.read_text(encoding="utf-8")
    assert status["completed"] is True
    assert "queue worker stopped" in output
    assert "Traceback" not in output


async def _wait_for_health(client: httpx.AsyncClient, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"serve exited early with code {process.returncode}")
        try:
            if (await client.get("/health")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.2)
    raise AssertionError("serve did not answer /health within 60 s")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]

"""The serve app and its queue worker on Azurite: real documents through HTTP, and the hostile cases."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json

import pytest

from tests.service_support import azurite_settings, running_service, wait_for_status, wait_until_gone

pytestmark = [pytest.mark.azurite]

KEY1 = "integration-key-1"
KEY2 = "integration-key-2"


@pytest.fixture
def settings(tmp_path, azurite_connection_string):
    return azurite_settings(tmp_path, azurite_connection_string)


async def _upload(client, files, **form):
    return await client.post("/upload", files=files, data=form)


def _file(path, field="file"):
    return (field, (path.name, path.read_bytes(), "application/octet-stream"))


# ---------------------------------------------------------------- real documents


@pytest.mark.corpus
@pytest.mark.slow
async def test_km_samples_ask_and_search_with_filters(settings, corpus_dir):
    samples = sorted((corpus_dir / "km-samples").iterdir())
    async with running_service(settings) as service:
        client = service.client
        for path in samples:
            group = "text" if path.suffix in {".txt", ".html", ".json"} else "office"
            response = await _upload(
                client, [_file(path)], index="samples", documentId=path.stem, tags=f"group:{group}"
            )
            assert response.status_code == 202, (path.name, response.text)

        statuses = {
            path.stem: await wait_for_status(client, path.stem, index="samples", timeout=300)
            for path in samples
        }
        failed = {name: status["error"] for name, status in statuses.items() if status["failed"]}
        assert failed == {}

        moon = await client.post(
            "/ask", json={"index": "samples", "question": "What is the Moon's orbital period?"}
        )
        filtered = await client.post(
            "/search",
            json={
                "index": "samples",
                "query": "Moon orbit Earth",
                "filters": [{"group": ["office"]}],
                "limit": 20,
            },
        )

    assert moon.status_code == 200
    assert "file2-Wikipedia-Moon.txt" in {source["sourceName"] for source in moon.json()["relevantSources"]}
    assert filtered.status_code == 200
    office = {path.stem for path in samples if path.suffix not in {".txt", ".html", ".json"}}
    assert {citation["documentId"] for citation in filtered.json()["results"]} <= office


@pytest.mark.corpus
@pytest.mark.slow
async def test_contoso_corpus_completes_and_answers(settings, corpus_dir):
    paths = sorted(path for path in (corpus_dir / "contoso").iterdir() if path.suffix in {".pdf", ".md"})
    async with running_service(settings) as service:
        client = service.client
        for path in paths:
            response = await _upload(client, [_file(path)], index="contoso", documentId=path.stem)
            assert response.status_code == 202
        statuses = [await wait_for_status(client, path.stem, index="contoso", timeout=600) for path in paths]
        answer = await client.post(
            "/ask", json={"index": "contoso", "question": "What does PerksPlus reimburse?"}
        )
    assert [status["completed"] for status in statuses] == [True] * len(paths)
    assert "PerksPlus.pdf" in {source["sourceName"] for source in answer.json()["relevantSources"]}


@pytest.mark.corpus
async def test_binary_upload_downloads_exact_bytes(settings, corpus_dir):
    path = corpus_dir / "contoso" / "PerksPlus.pdf"
    original = path.read_bytes()
    async with running_service(settings, start_worker=False) as service:
        await _upload(service.client, [_file(path)], documentId="perks")
        response = await service.client.get(
            "/download", params={"documentId": "perks", "filename": path.name}
        )
    assert response.status_code == 200
    assert len(response.content) == len(original)
    assert hashlib.sha256(response.content).hexdigest() == hashlib.sha256(original).hexdigest()
    assert response.headers["content-type"] == "application/pdf"


async def test_delete_document_and_index(settings):
    async with running_service(settings) as service:
        client = service.client
        files = [("file", ("a.txt", b"alpha document about comets", "text/plain"))]
        await _upload(client, files, index="keep", documentId="a")
        await _upload(client, files, index="keep", documentId="b")
        await _upload(client, files, index="drop", documentId="c")
        for index, document_id in (("keep", "a"), ("keep", "b"), ("drop", "c")):
            await wait_for_status(client, document_id, index=index)

        deleted_document = await client.delete("/documents", params={"index": "keep", "documentId": "a"})
        deleted_index = await client.delete("/indexes", params={"index": "drop"})
        await wait_until_gone(client, "a", index="keep")
        await wait_until_gone(client, "c", index="drop")
        await service.wait_until_idle()
        remaining = await client.post("/search", json={"index": "keep", "query": "comets"})
        indexes = await client.get("/indexes")
        count_a = await service.memory.ctx.memory_db.count("keep", filters=[{"__document_id": ["a"]}])

    assert deleted_document.status_code == 202
    assert deleted_index.status_code == 202
    assert {citation["documentId"] for citation in remaining.json()["results"]} == {"b"}
    assert "drop" not in {item["name"] for item in indexes.json()["results"]}
    assert count_a == 0


# ---------------------------------------------------------------- hostile cases


@pytest.mark.corpus
async def test_quoted_tags_and_file_name_filter_exactly(settings, corpus_dir):
    pdf = (corpus_dir / "contoso" / "PerksPlus.pdf").read_bytes()
    async with running_service(settings) as service:
        client = service.client
        await _upload(
            client,
            [("file", ("Team's Menu.pdf", pdf, "application/pdf"))],
            documentId="menu",
            tags=["colors:red,white", "period:Q1'24"],
        )
        await _upload(
            client,
            [("file", ("other.pdf", pdf, "application/pdf"))],
            documentId="other",
            tags=["colors:red", "period:Q1"],
        )
        await wait_for_status(client, "menu", timeout=120)
        await wait_for_status(client, "other", timeout=120)

        by_colors = await client.post(
            "/search", json={"query": "PerksPlus", "filters": [{"colors": ["red,white"]}]}
        )
        by_period = await client.post(
            "/search", json={"query": "PerksPlus", "filters": [{"period": ["Q1'24"]}]}
        )
        asked = await client.post(
            "/ask", json={"question": "What is PerksPlus?", "filters": [{"period": ["Q1'24"]}]}
        )
        await client.delete("/documents", params={"documentId": "menu"})
        await wait_until_gone(client, "menu")
        await service.wait_until_idle()
        after = await client.post("/search", json={"query": "PerksPlus", "filters": [{"period": ["Q1'24"]}]})

    assert {c["documentId"] for c in by_colors.json()["results"]} == {"menu"}
    assert {c["documentId"] for c in by_period.json()["results"]} == {"menu"}
    assert {c["sourceName"] for c in asked.json()["relevantSources"]} == {"Team's Menu.pdf"}
    assert after.json()["results"] == []


@pytest.mark.corpus
async def test_zero_bytes_file_is_400_and_nothing_stored(settings, cases_dir):
    async with running_service(settings, start_worker=False) as service:
        response = await _upload(service.client, [_file(cases_dir / "zero-bytes.txt")], documentId="zero")
        status = await service.client.get("/upload-status", params={"documentId": "zero"})
        blobs = await _blob_names(settings)
        counts = await service.queue_counts()
    assert response.status_code == 400
    assert "file is empty" in response.json()["detail"]
    assert status.status_code == 404
    assert blobs == []
    assert not any(counts.values())


@pytest.mark.corpus
async def test_unsupported_file_is_415(settings, cases_dir):
    async with running_service(settings, start_worker=False) as service:
        response = await _upload(service.client, [_file(cases_dir / "unsupported.xyz")], documentId="xyz")
        blobs = await _blob_names(settings)
    assert response.status_code == 415
    assert blobs == []


async def test_300_long_tags_is_400(settings):
    tags = [f"tag{i}:{'long value ' * 30}" for i in range(300)]
    async with running_service(settings, start_worker=False) as service:
        response = await _upload(service.client, [("file", ("a.txt", b"text", "text/plain"))], tags=tags)
        counts = await service.queue_counts()
    assert response.status_code == 400
    assert not any(counts.values())


async def test_500_files_keep_queue_message_small(settings):
    files = [
        ("file", (f"part-{i:03}.txt", f"Part {i} of the manual.".encode(), "text/plain")) for i in range(500)
    ]
    async with running_service(settings, start_worker=False) as service:
        response = await _upload(service.client, files, documentId="manual")
        queue = await _queue_client(settings, "extract")
        async with queue:
            peeked = await queue.peek_messages(max_messages=32)
    body = json.loads(base64.b64decode(peeked[0].content))
    assert response.status_code == 202
    assert len(peeked) == 1
    assert len(peeked[0].content.encode()) < 512
    assert set(body) == {"index", "document_id", "execution_id"}


async def test_api_keys_missing_wrong_and_rotated(tmp_path, azurite_connection_string):
    settings = azurite_settings(
        tmp_path, azurite_connection_string, http={"api_key1": KEY1, "api_key2": KEY2}
    )
    async with running_service(settings, start_worker=False) as service:
        client = service.client
        missing = await client.get("/indexes")
        wrong = await client.get("/indexes", headers={"Authorization": "stale-key"})
        first = await client.get("/indexes", headers={"Authorization": KEY1})
        second = await client.get("/indexes", headers={"Authorization": KEY2})
    assert missing.status_code == 401
    assert wrong.status_code == 403
    assert first.status_code == 200
    assert second.status_code == 200


# ---------------------------------------------------------------- concurrency


@pytest.mark.slow
async def test_50_concurrent_uploads_all_complete_once(settings):
    texts = {f"doc-{i:02}": f"Document {i} talks about topic number {i} and nothing else." for i in range(50)}
    async with running_service(settings, batch_size=8) as service:
        client = service.client
        responses = await asyncio.gather(
            *(
                _upload(
                    client,
                    [("file", (f"{name}.txt", text.encode(), "text/plain"))],
                    index="many",
                    documentId=name,
                )
                for name, text in texts.items()
            )
        )
        statuses = [await wait_for_status(client, name, index="many", timeout=300) for name in texts]
        await service.wait_until_idle()
        db = service.memory.ctx.memory_db
        counts = {name: await db.count("many", filters=[{"__document_id": [name]}]) for name in texts}
        total = await db.count("many")
    assert [response.status_code for response in responses] == [202] * 50
    assert [status["completed"] for status in statuses] == [True] * 50
    assert counts == {name: 1 for name in texts}
    assert total == 50


# ---------------------------------------------------------------- helpers


async def _blob_names(settings) -> list[str]:
    from azure.core.exceptions import ResourceNotFoundError
    from azure.storage.blob.aio import BlobServiceClient

    connection = settings.storage.azure.connection_string.get_secret_value()
    async with BlobServiceClient.from_connection_string(connection) as service:
        container = service.get_container_client(settings.storage.container)
        try:
            return [blob.name async for blob in container.list_blobs()]
        except ResourceNotFoundError:
            return []


async def _queue_client(settings, step):
    from azure.storage.queue.aio import QueueClient

    from kernel_memory.queues import queue_name_for

    connection = settings.queue.azure.connection_string.get_secret_value()
    return QueueClient.from_connection_string(connection, queue_name_for(step, settings.queue.prefix))

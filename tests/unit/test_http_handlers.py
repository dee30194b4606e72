"""HTTP handlers on the embedded defaults: uploads, status, ask, search, download, deletes and errors."""

from __future__ import annotations

import hashlib
import json
import os

import httpx
import pytest
from starlette.requests import Request

from kernel_memory.errors import ThrottledError
from kernel_memory.http.app import create_app
from kernel_memory.http.handlers import ApiHandlers, content_disposition
from tests.service_support import HashEmbedder, build_memory, local_settings, wait_for_status, wait_until_gone

TEXT = b"The Northwind plan covers eye exams. Contoso pays for gym memberships through PerksPlus."


@pytest.fixture
async def service(tmp_path):
    settings = local_settings(tmp_path, http={"max_upload_bytes": 1024 * 1024})
    memory = build_memory(settings)
    app = create_app(settings, memory=memory)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        yield http, memory
    await memory.aclose()


@pytest.fixture
def client(service):
    return service[0]


async def _upload(client, document_id, *, data=TEXT, name="notes.txt", field="file", **form):
    return await client.post(
        "/upload", files=[(field, (name, data, "text/plain"))], data={"documentId": document_id, **form}
    )


# ---------------------------------------------------------------- upload


async def test_upload_returns_202_with_location(client):
    response = await _upload(client, "doc-1", index="team")
    assert response.status_code == 202
    assert response.headers["location"] == "/upload-status?index=team&documentId=doc-1"
    assert response.json()["documentId"] == "doc-1"


async def test_upload_completes(client):
    await _upload(client, "doc-1")
    status = await wait_for_status(client, "doc-1")
    assert status["completed"] is True
    assert status["failed"] is False


async def test_upload_files_under_any_field_name(client):
    files = [
        ("file1", ("a.txt", b"alpha text", "text/plain")),
        ("attachment", ("b.md", b"# beta\n\nbeta text", "text/markdown")),
        ("files", ("c.txt", b"gamma text", "text/plain")),
    ]
    response = await client.post("/upload", files=files, data={"documentId": "three"})
    assert response.status_code == 202
    for name in ("a.txt", "b.md", "c.txt"):
        download = await client.get("/download", params={"documentId": "three", "filename": name})
        assert download.status_code == 200, name


async def test_upload_tags_repeated_and_kept_verbatim(client):
    await _upload(client, "tagged", tags=["colors:red,white", "period:Q1'24", "user:ann", "user:bob"])
    status = await wait_for_status(client, "tagged")
    assert status["tags"] == {"colors": ["red,white"], "period": ["Q1'24"], "user": ["ann", "bob"]}


async def test_upload_steps_comma_separated(client):
    await _upload(client, "steps", steps="extract,partition")
    status = await wait_for_status(client, "steps")
    assert status["steps"] == ["extract", "partition"]


async def test_upload_steps_repeated(client):
    await _upload(client, "steps2", steps=["extract", "partition"])
    status = await wait_for_status(client, "steps2")
    assert status["steps"] == ["extract", "partition"]


async def test_upload_unknown_step_is_400(client):
    response = await _upload(client, "bad-step", steps="extract,teleport")
    assert response.status_code == 400
    assert "teleport" in response.json()["detail"]


async def test_upload_args_must_be_json_object(client):
    not_json = await _upload(client, "args1", args="{not json")
    not_object = await _upload(client, "args2", args="[1, 2]")
    assert not_json.status_code == 400
    assert not_object.status_code == 400


async def test_upload_args_object_accepted(client):
    response = await _upload(
        client, "args3", args=json.dumps({"custom_partitioning_max_tokens_per_paragraph": 50})
    )
    assert response.status_code == 202


async def test_upload_reserved_tag_key_is_400(client):
    response = await _upload(client, "reserved", tags="__document_id:other")
    assert response.status_code == 400
    assert "__document_id" in response.json()["detail"]


async def test_upload_tag_without_separator_is_400(client):
    response = await _upload(client, "nosep", tags="justaword")
    assert response.status_code == 400


async def test_upload_300_long_tags_is_400(client):
    tags = [f"key{i}:{'v' * 200}" for i in range(300)]
    response = await _upload(client, "many-tags", tags=tags)
    assert response.status_code == 400
    assert response.json()["title"] == "Invalid request"


async def test_upload_empty_file_is_400_and_stores_nothing(client, service):
    response = await _upload(client, "empty", data=b"", name="zero-bytes.txt")
    status = await client.get("/upload-status", params={"documentId": "empty"})
    assert response.status_code == 400
    assert "file is empty" in response.json()["detail"]
    assert status.status_code == 404


async def test_upload_unsupported_type_is_415(client):
    response = await _upload(client, "xyz", data=os.urandom(2048), name="unsupported.xyz")
    status = await client.get("/upload-status", params={"documentId": "xyz"})
    assert response.status_code == 415
    assert status.status_code == 404


async def test_upload_without_files_is_400(client):
    response = await client.post("/upload", data={"documentId": "nofile"}, files=[("x", (None, "text"))])
    assert response.status_code == 400


async def test_upload_json_body_is_415(client):
    response = await client.post("/upload", json={"documentId": "x"})
    assert response.status_code == 415


async def test_upload_invalid_document_id_is_400(client):
    response = await _upload(client, "../escape")
    assert response.status_code == 400


async def test_upload_invalid_index_is_400(client):
    response = await _upload(client, "doc", index="Not An Index!")
    assert response.status_code == 400


async def test_upload_content_length_over_limit(tmp_path):
    settings = local_settings(tmp_path, http={"max_upload_bytes": 1000})
    memory = build_memory(settings)
    handlers = ApiHandlers(settings, _provider(memory))
    body_read = False

    async def receive():
        nonlocal body_read
        body_read = True
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/upload",
        "query_string": b"",
        "headers": [
            (b"content-type", b"multipart/form-data; boundary=xyz"),
            (b"content-length", b"5000"),
        ],
    }
    response = await handlers.upload(Request(scope, receive))
    await memory.aclose()
    assert response.status_code == 413
    assert body_read is False


async def test_upload_chunked_over_limit_is_413(tmp_path):
    settings = local_settings(tmp_path, http={"max_upload_bytes": 10_000})
    memory = build_memory(settings)
    app = create_app(settings, memory=memory)
    boundary = "boundary123"

    async def body():
        yield f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.txt"\r\n\r\n'.encode()
        for _ in range(20):
            yield b"x" * 1000
        yield f"\r\n--{boundary}--\r\n".encode()

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        response = await http.post(
            "/upload",
            content=body(),
            headers={"content-type": f"multipart/form-data; boundary={boundary}"},
        )
        status = await http.get("/upload-status", params={"documentId": "big"})
    await memory.aclose()
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert status.status_code == 404


# ---------------------------------------------------------------- status and download


async def test_status_unknown_document_is_404(client):
    response = await client.get("/upload-status", params={"documentId": "missing"})
    assert response.status_code == 404
    assert response.json()["status"] == 404


async def test_status_without_document_id_is_400(client):
    response = await client.get("/upload-status")
    assert response.status_code == 400


async def test_download_keeps_exact_bytes(client):
    await client.post(
        "/upload", files=[("file", ("Team's Menu.txt", TEXT, "text/plain"))], data={"documentId": "bytes"}
    )
    response = await client.get("/download", params={"documentId": "bytes", "filename": "Team's Menu.txt"})
    assert response.status_code == 200
    assert hashlib.sha256(response.content).hexdigest() == hashlib.sha256(TEXT).hexdigest()
    assert response.headers["content-length"] == str(len(TEXT))
    assert "Team%27s%20Menu.txt" in response.headers["content-disposition"]


async def test_download_unknown_file_is_404(client):
    await _upload(client, "dl")
    response = await client.get("/download", params={"documentId": "dl", "filename": "other.txt"})
    assert response.status_code == 404


def test_content_disposition_non_ascii_name():
    header = content_disposition('Résumé "final".pdf')
    assert 'filename="R_sum_ _final_.pdf"' in header
    assert "filename*=UTF-8''R%C3%A9sum%C3%A9%20%22final%22.pdf" in header


# ---------------------------------------------------------------- ask and search


async def _ask_after_upload(client, **body):
    await _upload(client, "perks")
    await wait_for_status(client, "perks")
    return await client.post("/ask", json=body)


async def test_ask_answers_with_sources(client):
    response = await _ask_after_upload(client, question="What does PerksPlus pay for?")
    body = response.json()
    assert response.status_code == 200
    assert body["noResult"] is False
    assert body["relevantSources"][0]["documentId"] == "perks"
    assert "streamState" not in body


async def test_ask_stream_sends_events_ending_with_done(client):
    response = await _ask_after_upload(client, question="What does PerksPlus pay for?", stream=True)
    events = [line[len("data: ") :] for line in response.text.split("\n\n") if line.startswith("data: ")]
    pieces = [json.loads(event) for event in events[:-1]]
    assert response.headers["content-type"].startswith("text/event-stream")
    assert events[-1] == "[DONE]"
    assert pieces[0]["relevantSources"]
    assert pieces[-1]["streamState"] == "last"


async def test_ask_unrelated_question_is_not_found(client):
    response = await _ask_after_upload(client, question="How do I bake sourdough bread?")
    body = response.json()
    assert response.status_code == 200
    assert body["noResult"] is True
    assert body["text"] == "INFO NOT FOUND"
    assert body["noResultReason"] == "The facts found do not answer the question"
    assert body["relevantSources"] == []


async def test_ask_stream_unrelated_question_is_not_found(client):
    response = await _ask_after_upload(client, question="How do I bake sourdough bread?", stream=True)
    events = [line[len("data: ") :] for line in response.text.split("\n\n") if line.startswith("data: ")]
    [piece] = [json.loads(event) for event in events[:-1]]
    assert events[-1] == "[DONE]"
    assert piece["streamState"] == "last"
    assert piece["noResult"] is True
    assert piece["text"] == "INFO NOT FOUND"


async def test_ask_without_question_is_400(client):
    response = await client.post("/ask", json={"index": "default"})
    assert response.status_code == 400
    assert "question" in response.json()["detail"]


async def test_ask_invalid_json_is_400(client):
    response = await client.post("/ask", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400


async def test_ask_json_array_is_400(client):
    response = await client.post("/ask", json=["question"])
    assert response.status_code == 400


async def test_ask_filters_of_wrong_shape_is_400(client):
    response = await client.post("/ask", json={"question": "q", "filters": "user:ann"})
    assert response.status_code == 400
    assert "filters" in response.json()["detail"]


async def test_ask_body_over_limit_is_413(client):
    response = await client.post("/ask", json={"question": "q" * (1024 * 1024 + 10)})
    assert response.status_code == 413


async def test_search_filters_by_tag(client):
    await _upload(client, "ann-doc", tags="user:ann")
    await _upload(client, "bob-doc", tags="user:bob")
    await wait_for_status(client, "ann-doc")
    await wait_for_status(client, "bob-doc")
    response = await client.post(
        "/search", json={"query": "Northwind eye exams", "filters": [{"user": ["bob"]}]}
    )
    documents = {citation["documentId"] for citation in response.json()["results"]}
    assert documents == {"bob-doc"}


async def test_search_without_query_is_400(client):
    response = await client.post("/search", json={"query": "  "})
    assert response.status_code == 400


async def test_ask_throttled_model_is_429_with_retry_after(tmp_path):
    class ThrottledEmbedder(HashEmbedder):
        async def embed_query(self, text):
            raise ThrottledError("embedding service returned 429", retry_after=7.2)

    settings = local_settings(tmp_path)
    memory = build_memory(settings, embedder=ThrottledEmbedder())
    app = create_app(settings, memory=memory)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        await _upload(http, "doc")
        await memory.wait_for_pipeline()
        response = await http.post("/ask", json={"question": "anything", "stream": True})
    await memory.aclose()
    assert response.status_code == 429
    assert response.headers["retry-after"] == "8"


# ---------------------------------------------------------------- deletes and indexes


async def test_delete_document_removes_it(client):
    await _upload(client, "gone", index="tmp")
    await wait_for_status(client, "gone", index="tmp")
    response = await client.delete("/documents", params={"index": "tmp", "documentId": "gone"})
    assert response.status_code == 202
    assert response.json() == {"index": "tmp", "documentId": "gone", "message": response.json()["message"]}
    await wait_until_gone(client, "gone", index="tmp")


async def test_delete_document_without_id_is_400(client):
    response = await client.delete("/documents")
    assert response.status_code == 400


async def test_indexes_listed_and_deleted(client, service):
    memory = service[1]
    await _upload(client, "a", index="first")
    await _upload(client, "b", index="second")
    await wait_for_status(client, "a", index="first")
    await wait_for_status(client, "b", index="second")
    listed = await client.get("/indexes")
    deleted = await client.delete("/indexes", params={"index": "first"})
    await memory.wait_for_pipeline()
    after = await client.get("/indexes")
    assert {item["name"] for item in listed.json()["results"]} >= {"first", "second"}
    assert deleted.status_code == 202
    assert "first" not in {item["name"] for item in after.json()["results"]}


# ---------------------------------------------------------------- service routes


async def test_service_status_is_json_string(client):
    response = await client.get("/")
    assert response.status_code == 200
    assert isinstance(response.json(), str)


async def test_unknown_route_is_problem_404(client):
    response = await client.get("/no-such-route")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_wrong_method_is_problem_405(client):
    response = await client.put("/ask")
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"


def _provider(memory):
    async def provide():
        return memory

    return provide

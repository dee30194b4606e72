"""function_app.py: what it registers, and each function invoked as the host would invoke it.

The queue tests send step messages through our real producer encoding into a
list in place of Azure Storage, decode them as the host does under
host.json `messageEncoding`, and call the registered functions with
`azure.functions` QueueMessage objects.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.functions import AuthLevel
from azure.functions.blob import InputStream
from azure.functions.queue import QueueMessage
from starlette.requests import Request

from kernel_memory import functions as km
from kernel_memory.errors import NotFoundError, TransientError
from kernel_memory.http.routes import ROUTES
from kernel_memory.pipeline.orchestrator import ALL_STEPS
from kernel_memory.queues import queue_name_for
from kernel_memory.queues.dispatcher import QueueDispatcher
from kernel_memory.queues.encoding import encode_message
from kernel_memory.settings import Settings
from kernel_memory.step_messages import QUEUE_STEPS
from tests.service_support import HashEmbedder, build_memory, local_settings

REPO_ROOT = Path(__file__).resolve().parents[2]
HOST_JSON = json.loads((REPO_ROOT / "host.json").read_text(encoding="utf-8"))
LOCAL_SETTINGS = json.loads((REPO_ROOT / "local.settings.sample.json").read_text(encoding="utf-8"))["Values"]
PREFIX = "km"


def _load_function_app():
    spec = importlib.util.spec_from_file_location("function_app_under_test", REPO_ROOT / "function_app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FUNCTIONS = {function.get_function_name(): function for function in _load_function_app().app.get_functions()}


def _trigger(name: str) -> dict[str, Any]:
    return json.loads(FUNCTIONS[name].get_function_json())["bindings"][0]


def _resolve(expression: str) -> str:
    """Resolve %SETTING% binding expressions from local.settings.sample.json, as the host does."""
    for key, value in LOCAL_SETTINGS.items():
        expression = expression.replace(f"%{key}%", value)
    return expression


class ListQueue:
    """Stands in for Azure Storage queues: keeps the message text our producer would send."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self.messages: list[tuple[str, str]] = []

    async def send(self, queue_name: str, body: dict[str, Any]) -> None:
        self.messages.append((queue_name, encode_message(body, self.encoding)))


def _host_decode(text: str) -> bytes:
    """Decode message text as the Functions host does under host.json messageEncoding."""
    if HOST_JSON["extensions"]["queues"]["messageEncoding"] == "base64":
        return base64.b64decode(text)
    return text.encode("utf-8")


def _function_for_queue(queue_name: str):
    for function in FUNCTIONS.values():
        binding = json.loads(function.get_function_json())["bindings"][0]
        if binding["type"] == "queueTrigger" and _resolve(binding["queueName"]) == queue_name:
            return function.get_user_function()
    raise AssertionError(f"no function listens on queue {queue_name}")


@pytest.fixture
async def hosted(tmp_path):
    """A Memory behind the Functions module, whose step messages land in a ListQueue."""
    settings = local_settings(tmp_path, queue={"prefix": PREFIX})
    queue = ListQueue(settings.queue.message_encoding)
    memory = build_memory(settings, dispatcher=QueueDispatcher(queue, prefix=PREFIX))
    km.use_memory(memory)
    yield memory, queue
    km.use_memory(None)
    await memory.aclose()


async def _deliver_all(queue: ListQueue, *, dequeue_count: int = 1) -> list[str]:
    delivered = []
    while queue.messages:
        queue_name, text = queue.messages.pop(0)
        message = QueueMessage(id=f"m{len(delivered)}", body=_host_decode(text), dequeue_count=dequeue_count)
        await _function_for_queue(queue_name)(message)
        delivered.append(queue_name)
    return delivered


# ---------------------------------------------------------------- registration


def test_queue_steps_match_pipeline():
    assert QUEUE_STEPS == ALL_STEPS


@pytest.mark.parametrize("route", [route for route in ROUTES if route.path != "/"], ids=lambda r: r.name)
def test_http_function_registered(route):
    binding = _trigger(route.name)
    assert binding["type"] == "httpTrigger"
    assert binding["route"] == route.path.lstrip("/")
    assert binding["methods"] == [route.method]
    assert binding["authLevel"] == AuthLevel.ANONYMOUS.name


def test_http_functions_use_fastapi_types():
    from fastapi import Request as FastApiRequest
    from fastapi import Response as FastApiResponse

    handler = FUNCTIONS["upload"].get_user_function()
    assert handler.__annotations__["req"] is FastApiRequest
    assert handler.__annotations__["return"] is FastApiResponse


@pytest.mark.parametrize("step", QUEUE_STEPS)
def test_step_queue_function_registered(step):
    binding = _trigger(f"step_{step}")
    assert binding["type"] == "queueTrigger"
    assert _resolve(binding["queueName"]) == queue_name_for(step, PREFIX)
    assert binding["connection"] == "AzureWebJobsStorage"


@pytest.mark.parametrize("step", QUEUE_STEPS)
def test_poison_queue_function_registered(step):
    binding = _trigger(f"poison_{step}")
    assert binding["type"] == "queueTrigger"
    assert _resolve(binding["queueName"]) == queue_name_for(step, PREFIX) + "-poison"
    assert binding["connection"] == "AzureWebJobsStorage"


def test_inbox_blob_function_registered():
    binding = _trigger("inbox_blob")
    assert binding["type"] == "blobTrigger"
    assert _resolve(binding["path"]) == "kernel-memory-inbox/{name}"
    assert binding["source"] == "EventGrid"
    assert binding["connection"] == "AzureWebJobsStorage"


def test_function_count():
    http = len([route for route in ROUTES if route.path != "/"])
    assert len(FUNCTIONS) == http + 2 * len(QUEUE_STEPS) + 1


def test_import_builds_nothing():
    # A fresh interpreter: importing the app must not read settings, build clients or load the pipeline.
    code = (
        "import sys, function_app\n"
        "from kernel_memory import functions\n"
        "assert functions._memory is None and functions._handlers is None\n"
        "loaded = [m for m in ('kernel_memory.memory', 'kernel_memory.pipeline.orchestrator',"
        " 'kernel_memory.settings', 'azure.storage.queue', 'numpy') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], check=False, cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


# ---------------------------------------------------------------- host.json and app settings


def test_host_json_encoding_matches_producer_default():
    assert HOST_JSON["extensions"]["queues"]["messageEncoding"] == Settings().queue.message_encoding


def test_host_json_max_dequeue_count_matches_settings():
    assert HOST_JSON["extensions"]["queues"]["maxDequeueCount"] == Settings().queue.max_dequeue_count


def test_host_json_routes_have_no_prefix():
    assert HOST_JSON["extensions"]["http"]["routePrefix"] == ""


def test_host_json_extension_bundle():
    assert HOST_JSON["extensionBundle"] == {
        "id": "Microsoft.Azure.Functions.ExtensionBundle",
        "version": "[4.*, 5.0.0)",
    }


def test_local_settings_parse_as_settings(monkeypatch):
    for key, value in LOCAL_SETTINGS.items():
        monkeypatch.setenv(key, value)
    settings = Settings(_env_file=None)
    assert settings.queue.type == "azure_queue"
    assert settings.storage.type == "azure_blob"
    assert settings.queue.message_encoding == HOST_JSON["extensions"]["queues"]["messageEncoding"]


def test_local_settings_list_every_setting_with_a_default():
    from scripts.settings_table import iter_settings

    # Settings without a default stay out: an empty app setting is not "unset" to pydantic.
    expected = {variable for variable, default, _ in iter_settings(Settings) if default != "(unset)"}
    assert expected - set(LOCAL_SETTINGS) == set()


def test_local_settings_for_functions_host():
    assert LOCAL_SETTINGS["FUNCTIONS_WORKER_RUNTIME"] == "python"
    assert LOCAL_SETTINGS["PYTHON_ENABLE_INIT_INDEXING"] == "1"
    assert "devstoreaccount1" in LOCAL_SETTINGS["AzureWebJobsStorage"]


# ---------------------------------------------------------------- queue functions


async def test_encoding_round_trip_through_host():
    body = {"index": "default", "document_id": "Team's Menu", "execution_id": "e1", "note": "café ☕"}
    text = encode_message(body, Settings().queue.message_encoding)
    message = QueueMessage(id="1", body=_host_decode(text), dequeue_count=1)
    assert message.get_json() == body


async def test_queue_functions_run_pipeline(hosted):
    memory, queue = hosted
    await memory.import_files(
        [_file("notes.txt", b"PerksPlus pays for gym memberships.")],
        document_id="doc",
        tags={"user": ["ann"]},
    )
    delivered = await _deliver_all(queue)
    state = await memory.get_status(None, "doc")
    assert delivered == [queue_name_for(step, PREFIX) for step in memory.settings.default_steps]
    assert state.completed


async def test_queue_function_redelivery_changes_nothing(hosted):
    memory, queue = hosted
    await memory.import_files([_file("notes.txt", b"PerksPlus pays for gym memberships.")], document_id="doc")
    # Every message is delivered twice, as after a delete that did not reach the service.
    for _ in range(50):
        if not queue.messages:
            break
        queue_name, text = queue.messages.pop(0)
        function = _function_for_queue(queue_name)
        await function(QueueMessage(id="a", body=_host_decode(text), dequeue_count=1))
        await function(QueueMessage(id="a", body=_host_decode(text), dequeue_count=2))
    count = await memory.ctx.memory_db.count("default", filters=[{"__document_id": ["doc"]}])
    state = await memory.get_status(None, "doc")
    assert queue.messages == []
    assert state.completed_steps == memory.settings.default_steps
    assert count == 1


async def test_queue_function_transient_error_raises_before_last_delivery(tmp_path):
    memory, queue = _failing_memory(tmp_path)
    await memory.import_files([_file("notes.txt", b"some text to embed")], document_id="doc")
    await _deliver_steps(queue, 2)
    queue_name, text = queue.messages.pop(0)
    with pytest.raises(TransientError):
        await _function_for_queue(queue_name)(QueueMessage(id="x", body=_host_decode(text), dequeue_count=1))
    state = await memory.get_status(None, "doc")
    km.use_memory(None)
    await memory.aclose()
    assert not state.failed


async def test_queue_function_last_delivery_marks_failed(tmp_path):
    memory, queue = _failing_memory(tmp_path)
    await memory.import_files([_file("notes.txt", b"some text to embed")], document_id="doc")
    await _deliver_steps(queue, 2)
    queue_name, text = queue.messages.pop(0)
    last = memory.settings.queue.max_dequeue_count
    await _function_for_queue(queue_name)(QueueMessage(id="x", body=_host_decode(text), dequeue_count=last))
    state = await memory.get_status(None, "doc")
    km.use_memory(None)
    await memory.aclose()
    assert state.failed
    assert "embedding service is down" in state.error


async def test_poison_function_marks_document_failed(hosted):
    memory, queue = hosted
    state = await memory.import_files([_file("notes.txt", b"text")], document_id="doc")
    queue_name, text = queue.messages.pop(0)
    poison = _function_for_queue(queue_name + "-poison")
    await poison(QueueMessage(id="p", body=_host_decode(text), dequeue_count=1))
    after = await memory.get_status(None, "doc")
    assert after.execution_id == state.execution_id
    assert after.failed
    assert "poison queue" in after.error


async def test_poison_function_keeps_earlier_reason(hosted):
    memory, queue = hosted
    await memory.import_files([_file("notes.txt", b"text")], document_id="doc")
    queue_name, text = queue.messages.pop(0)
    body = json.loads(_host_decode(text))
    await memory.pipeline.mark_failed(body, "step extract failed after 5 deliveries: disk on fire")
    await _function_for_queue(queue_name + "-poison")(
        QueueMessage(id="p", body=_host_decode(text), dequeue_count=1)
    )
    after = await memory.get_status(None, "doc")
    assert after.error == "step extract failed after 5 deliveries: disk on fire"


async def test_queue_function_drops_undecodable_message(hosted):
    _memory, queue = hosted
    function = _function_for_queue(queue_name_for("extract", PREFIX))
    await function(QueueMessage(id="bad", body=b"\xff\xfe not json", dequeue_count=1))
    assert queue.messages == []


async def test_delete_functions_remove_document_and_index(hosted):
    memory, queue = hosted
    await memory.import_files([_file("a.txt", b"alpha")], index="one", document_id="a")
    await memory.import_files([_file("b.txt", b"beta")], index="two", document_id="b")
    await _deliver_all(queue)
    await memory.delete_document("a", index="one")
    await memory.delete_index("two")
    delivered = await _deliver_all(queue)
    assert delivered == [
        queue_name_for("private_delete_document", PREFIX),
        queue_name_for("private_delete_index", PREFIX),
    ]
    with pytest.raises(NotFoundError):
        await memory.get_status("one", "a")
    assert "two" not in await memory.list_indexes()


# ---------------------------------------------------------------- blob and HTTP functions


async def test_inbox_blob_imports_document(hosted):
    memory, queue = hosted
    container = memory.settings.storage.inbox_container
    blob = InputStream(
        data=b"PerksPlus pays for gym memberships.",
        name=f"{container}/team/doc-7/notes.txt",
        length=35,
        metadata={"tags": json.dumps({"user": ["ann"], "period": "Q1'24"})},
    )
    await FUNCTIONS["inbox_blob"].get_user_function()(blob)
    await _deliver_all(queue)
    state = await memory.get_status("team", "doc-7")
    assert state.completed
    assert state.tags == {"user": ["ann"], "period": ["Q1'24"]}


async def test_inbox_blob_empty_file_is_skipped(hosted):
    memory, queue = hosted
    container = memory.settings.storage.inbox_container
    blob = InputStream(data=b"", name=f"{container}/empty.txt", length=0, metadata={})
    await FUNCTIONS["inbox_blob"].get_user_function()(blob)
    assert queue.messages == []


def test_inbox_request_from_path_only():
    request = km.inbox_request("inbox/Team's Menu.pdf", {}, container="inbox")
    assert request.index is None
    assert request.document_id == "Team-s-Menu.pdf"
    assert request.file_name == "Team's Menu.pdf"


def test_inbox_request_metadata_overrides_path():
    metadata = {"Index": "hr", "document_id": "policy-1", "steps": "extract,partition"}
    request = km.inbox_request("inbox/a/b/c.txt", metadata, container="inbox")
    assert (request.index, request.document_id, request.steps) == ("hr", "policy-1", ["extract", "partition"])


def test_inbox_request_too_deep_is_invalid():
    from kernel_memory.errors import InvalidRequestError

    with pytest.raises(InvalidRequestError):
        km.inbox_request("inbox/a/b/c/d.txt", {}, container="inbox")


async def test_http_function_upload_and_status(hosted):
    _memory, queue = hosted
    built = httpx.Request(
        "POST",
        "http://localhost/upload",
        files=[("file", ("notes.txt", b"PerksPlus pays for gym memberships.", "text/plain"))],
        data={"documentId": "via-function"},
    )
    upload = await FUNCTIONS["upload"].get_user_function()(_starlette_request(built))
    await _deliver_all(queue)
    status_request = httpx.Request("GET", "http://localhost/upload-status?documentId=via-function")
    status = await FUNCTIONS["upload_status"].get_user_function()(_starlette_request(status_request))
    assert upload.status_code == 202
    assert status.status_code == 200
    assert json.loads(status.body)["completed"] is True


# ---------------------------------------------------------------- helpers


def _file(name: str, data: bytes):
    from kernel_memory.memory import UploadedFile

    return UploadedFile(name=name, data=data)


def _starlette_request(built: httpx.Request) -> Request:
    body = built.read()
    sent = False

    async def receive():
        nonlocal sent
        chunk, sent = (b"" if sent else body), True
        return {"type": "http.request", "body": chunk, "more_body": False}

    scope = {
        "type": "http",
        "method": built.method,
        "path": built.url.path,
        "query_string": built.url.query,
        "headers": [(key.lower(), value) for key, value in built.headers.raw],
    }
    return Request(scope, receive)


class _DownEmbedder(HashEmbedder):
    async def embed_documents(self, texts):
        raise TransientError("embedding service is down")


def _failing_memory(tmp_path):
    settings = local_settings(tmp_path, queue={"prefix": PREFIX})
    queue = ListQueue(settings.queue.message_encoding)
    memory = build_memory(
        settings, embedder=_DownEmbedder(), dispatcher=QueueDispatcher(queue, prefix=PREFIX)
    )
    km.use_memory(memory)
    return memory, queue


async def _deliver_steps(queue: ListQueue, count: int) -> None:
    for _ in range(count):
        queue_name, text = queue.messages.pop(0)
        await _function_for_queue(queue_name)(QueueMessage(id="s", body=_host_decode(text), dequeue_count=1))

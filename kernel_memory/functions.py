"""Handlers behind the functions that function_app.py registers: HTTP routes, step queues, poison queues, inbox blobs.

Nothing is built at import time. The settings, the `Memory` and its clients
are created on the first invocation and shared by every later one in the same
worker process, so a cold start pays only for importing this module.

Blobs dropped into the inbox container (`KM_STORAGE__INBOX_CONTAINER`) are
imported as documents, named by their path: `{index}/{documentId}/{file}`,
`{index}/{file}` or `{file}`, where the document id then comes from the file
name. Blob metadata may override `index`, `document_id`, `steps` (comma
separated) and `tags`, a JSON object such as `{"user": ["ann"], "period": "Q1"}`.
Metadata is ASCII, so other characters go in as JSON `\\u` escapes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kernel_memory.errors import InvalidRequestError, KernelMemoryError
from kernel_memory.step_messages import describe_error, process_poison_message, process_step_message

if TYPE_CHECKING:
    import azure.functions as func
    from starlette.requests import Request
    from starlette.responses import Response

    from kernel_memory.http.handlers import ApiHandlers
    from kernel_memory.http.lazy_memory import LazyMemory
    from kernel_memory.memory import Memory
    from kernel_memory.models import TagCollection

logger = logging.getLogger(__name__)

# App setting holding the queue name prefix; the triggers resolve it with a %...% binding expression.
QUEUE_PREFIX_SETTING = "KM_QUEUE__PREFIX"
# App setting holding the inbox container name, resolved the same way by the blob trigger.
INBOX_CONTAINER_SETTING = "KM_STORAGE__INBOX_CONTAINER"
# Connection of the queue and blob triggers: the Functions host's own storage account, which
# `AzureWebJobsStorage` (a connection string) or `AzureWebJobsStorage__*` (an identity) describes.
TRIGGER_CONNECTION = "AzureWebJobsStorage"

_memory: LazyMemory | None = None
_handlers: ApiHandlers | None = None


def trigger_queue_name(step: str, *, poison: bool = False) -> str:
    """Return the queue name of a step as a binding expression, `%KM_QUEUE__PREFIX%-{step}`.

    The host resolves it from the app settings, so it matches what
    `kernel_memory.queues.queue_name_for(step, prefix)` sends to.
    """
    name = f"%{QUEUE_PREFIX_SETTING}%-{step.replace('_', '-')}"
    return f"{name}-poison" if poison else name


def inbox_blob_path() -> str:
    return f"%{INBOX_CONTAINER_SETTING}%/{{name}}"


# ---------------------------------------------------------------- shared state


def memory_provider() -> LazyMemory:
    global _memory
    if _memory is None:
        from kernel_memory.http.lazy_memory import LazyMemory
        from kernel_memory.settings import Settings

        _memory = LazyMemory(Settings)
    return _memory


def api_handlers() -> ApiHandlers:
    global _handlers
    if _handlers is None:
        from kernel_memory.http.handlers import ApiHandlers

        provider = memory_provider()
        _handlers = ApiHandlers(provider.settings(), provider)
    return _handlers


def use_memory(memory: Memory | None) -> None:
    """Serve every later invocation from `memory` (None: build one from the environment again)."""
    from kernel_memory.http.lazy_memory import LazyMemory

    global _memory, _handlers
    _memory = LazyMemory(memory.settings, memory=memory) if memory is not None else None
    _handlers = None


# ---------------------------------------------------------------- HTTP


async def handle_http(name: str, request: Request) -> Response:
    """Run the `ApiHandlers` method `name`, the same one the serve app routes to."""
    return await api_handlers().handler(name)(request)


# ---------------------------------------------------------------- queues


async def handle_step_queue_message(step: str, message: func.QueueMessage) -> None:
    """Run one step. Raising makes the host deliver the message again, or move it to the poison queue."""
    body = _message_body(step, message)
    if body is None:
        return
    memory = await memory_provider()()
    await process_step_message(
        memory.pipeline,
        step,
        body,
        dequeue_count=message.dequeue_count or 1,
        max_dequeue_count=memory.settings.queue.max_dequeue_count,
    )


async def handle_poison_queue_message(step: str, message: func.QueueMessage) -> None:
    body = _message_body(step, message)
    if body is None:
        return
    memory = await memory_provider()()
    await process_poison_message(
        memory.pipeline, step, body, max_dequeue_count=memory.settings.queue.max_dequeue_count
    )


def _message_body(step: str, message: func.QueueMessage) -> dict[str, Any] | None:
    """Return the JSON body, which the host has already decoded as host.json `messageEncoding` sets."""
    from kernel_memory.queues.encoding import decode_message

    try:
        return decode_message(message.get_body().decode("utf-8"), "none")
    except (InvalidRequestError, UnicodeDecodeError) as error:
        # No delivery can make it readable; dropping it with a log line is all that is left.
        logger.error(
            "dropping message %s for step %s: %s (check that KM_QUEUE__MESSAGE_ENCODING matches host.json)",
            message.id,
            step,
            error,
        )
        return None


# ---------------------------------------------------------------- inbox blobs


@dataclass(slots=True)
class InboxRequest:
    file_name: str
    index: str | None = None
    document_id: str | None = None
    tags: TagCollection = field(default_factory=dict)
    steps: list[str] = field(default_factory=list)


def inbox_request(blob_name: str, metadata: Mapping[str, str] | None, *, container: str) -> InboxRequest:
    """Read the index, document id, tags and steps of an inbox blob from its path and metadata."""
    from kernel_memory.validation import document_id_from_file_name, validate_tags

    path = blob_name.strip("/")
    if path.startswith(container + "/"):
        path = path[len(container) + 1 :]
    parts = [part for part in path.split("/") if part]
    if not parts or len(parts) > 3:
        raise InvalidRequestError(
            f"inbox blob '{blob_name}' is not named {{index}}/{{documentId}}/{{file}}, {{index}}/{{file}} or {{file}}"
        )

    request = InboxRequest(file_name=parts[-1])
    if len(parts) >= 2:
        request.index = parts[0]
    request.document_id = parts[1] if len(parts) == 3 else document_id_from_file_name(parts[-1])

    values = {key.lower().replace("_", "").replace("-", ""): value for key, value in (metadata or {}).items()}
    request.index = values.get("index") or request.index
    request.document_id = values.get("documentid") or request.document_id
    if values.get("steps"):
        request.steps = [step.strip() for step in values["steps"].split(",") if step.strip()]
    if values.get("tags"):
        request.tags = _metadata_tags(values["tags"])
        validate_tags(request.tags)
    return request


def _metadata_tags(text: str) -> TagCollection:
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidRequestError(
            f"blob metadata 'tags' is not JSON ({error.msg}): write a JSON object"
        ) from None
    if not isinstance(parsed, dict):
        raise InvalidRequestError("blob metadata 'tags' must be a JSON object of key: value or key: [values]")
    tags: TagCollection = {}
    for key, value in parsed.items():
        values = value if isinstance(value, list) else [value]
        tags[str(key)] = [str(item) for item in values]
    return tags


async def handle_inbox_blob(blob: func.InputStream) -> None:
    """Import a blob dropped into the inbox container as a document.

    A blob that can never be imported (empty, unsupported, badly named) is
    logged and skipped; transient failures propagate so the host retries.
    """
    from kernel_memory.memory import UploadedFile

    provider = memory_provider()
    settings = provider.settings()
    name = blob.name or ""
    try:
        request = inbox_request(name, blob.metadata, container=settings.storage.inbox_container)
        if blob.length is not None and blob.length > settings.http.max_upload_bytes:
            raise InvalidRequestError(
                f"inbox blob is {blob.length} bytes, over KM_HTTP__MAX_UPLOAD_BYTES={settings.http.max_upload_bytes}"
            )
        memory = await provider()
        state = await memory.import_files(
            [UploadedFile(name=request.file_name, data=blob.read())],
            index=request.index,
            document_id=request.document_id,
            tags=request.tags,
            steps=request.steps or None,
        )
    except KernelMemoryError as error:
        if error.transient:
            raise
        logger.error("skipping inbox blob %s: %s", name, describe_error(error))
        return
    logger.info("imported inbox blob %s as %s/%s", name, state.index, state.document_id)

"""Handlers of the HTTP API: plain async callables from a Starlette `Request` to a `Response`.

The Starlette app of `kernel-memory serve` and the HTTP functions of
function_app.py route to the same `ApiHandlers` methods, so both speak
exactly the same protocol. Every handler checks the API key (except
`/health`) and turns errors into RFC 9457 problem details.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, urlencode

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from kernel_memory.errors import InvalidRequestError, KernelMemoryError, PayloadTooLargeError
from kernel_memory.http.auth import ApiKeyAuth
from kernel_memory.http.multipart import check_content_length, read_upload_form
from kernel_memory.http.problems import problem_for_error
from kernel_memory.http.schemas import (
    DataPipelineStatus,
    DeleteAccepted,
    IndexCollection,
    IndexDetails,
    UploadAccepted,
)
from kernel_memory.models import MemoryAnswer, MemoryQuery, SearchQuery
from kernel_memory.settings import Settings
from kernel_memory.validation import parse_tags

if TYPE_CHECKING:
    from kernel_memory.memory import Memory

logger = logging.getLogger(__name__)

MemoryProvider = Callable[[], Awaitable["Memory"]]
Handler = Callable[[Request], Awaitable[Response]]
ModelT = TypeVar("ModelT", bound=BaseModel)

# Largest JSON body accepted by /ask and /search; a query never needs more.
MAX_JSON_BYTES = 1024 * 1024
SSE_DONE = b"data: [DONE]\n\n"


class ApiHandlers:
    """The API's handlers, bound to settings and a (possibly lazy) `Memory`."""

    def __init__(self, settings: Settings, memory: MemoryProvider) -> None:
        self._settings = settings
        self._memory = memory
        self._auth = ApiKeyAuth.from_settings(settings.http)
        self._started = time.monotonic()

    def handler(self, name: str) -> Handler:
        return getattr(self, name)

    # ------------------------------------------------------------ service

    async def service_status(self, request: Request) -> Response:
        return await self._respond(request, self._service_status)

    async def health(self, request: Request) -> Response:
        return await self._respond(request, self._health, public=True)

    async def openapi(self, request: Request) -> Response:
        return await self._respond(request, self._openapi)

    # ------------------------------------------------------------ documents

    async def upload(self, request: Request) -> Response:
        return await self._respond(request, self._upload)

    async def upload_status(self, request: Request) -> Response:
        return await self._respond(request, self._upload_status)

    async def download(self, request: Request) -> Response:
        return await self._respond(request, self._download)

    async def delete_document(self, request: Request) -> Response:
        return await self._respond(request, self._delete_document)

    # ------------------------------------------------------------ retrieval

    async def ask(self, request: Request) -> Response:
        return await self._respond(request, self._ask)

    async def search(self, request: Request) -> Response:
        return await self._respond(request, self._search)

    # ------------------------------------------------------------ indexes

    async def list_indexes(self, request: Request) -> Response:
        return await self._respond(request, self._list_indexes)

    async def delete_index(self, request: Request) -> Response:
        return await self._respond(request, self._delete_index)

    # ------------------------------------------------------------ plumbing

    async def _respond(self, request: Request, action: Handler, *, public: bool = False) -> Response:
        started = time.perf_counter()
        try:
            if not public:
                self._auth.check(request.headers)
            response = await action(request)
        except Exception as error:  # noqa: BLE001 - every error becomes a problem response; unexpected ones are logged
            response = problem_for_error(error, request)
        logger.info(
            "%s %s %d in %.0f ms",
            request.method,
            request.url.path,
            response.status_code,
            (time.perf_counter() - started) * 1000,
        )
        return response

    # ------------------------------------------------------------ implementations

    async def _service_status(self, request: Request) -> Response:
        uptime = int(time.monotonic() - self._started)
        return JSONResponse(f"Kernel Memory service is running. Uptime: {uptime} seconds.")

    async def _health(self, request: Request) -> Response:
        return JSONResponse("OK")

    async def _openapi(self, request: Request) -> Response:
        document = resources.files("kernel_memory.http").joinpath("openapi.json").read_bytes()
        return Response(document, media_type="application/json")

    async def _upload(self, request: Request) -> Response:
        from kernel_memory.memory import UploadedFile

        limits = self._settings.http
        form = await read_upload_form(
            request, max_bytes=limits.max_upload_bytes, max_files=limits.max_files_per_upload
        )
        tags = parse_tags(form.tags)
        files = [
            UploadedFile(name=part.name, data=part.data, content_type=part.content_type)
            for part in form.files
        ]

        memory = await self._memory()
        state = await memory.import_files(
            files,
            index=form.index,
            document_id=form.document_id,
            tags=tags,
            steps=form.steps or None,
            args=form.args or None,
        )
        location = "/upload-status?" + urlencode({"index": state.index, "documentId": state.document_id})
        accepted = UploadAccepted(
            index=state.index,
            document_id=state.document_id,
            message="Upload accepted: the ingestion pipeline has started",
        )
        return _json_response(accepted, status_code=202, headers={"Location": location})

    async def _upload_status(self, request: Request) -> Response:
        document_id = _required_query(request, "documentId")
        memory = await self._memory()
        state = await memory.get_status(request.query_params.get("index"), document_id)
        return _json_response(DataPipelineStatus.model_validate(state.to_status()))

    async def _download(self, request: Request) -> Response:
        document_id = _required_query(request, "documentId")
        file_name = _required_query(request, "filename")
        memory = await self._memory()
        download = await memory.download(request.query_params.get("index"), document_id, file_name)

        # Read the first chunk before sending headers, so a missing blob is a 404, not a broken stream.
        chunks = aiter(download.chunks)
        first = await anext(chunks, b"")
        headers = {
            "Content-Length": str(download.size),
            "Content-Disposition": content_disposition(download.file_name),
        }
        return StreamingResponse(_prepend(first, chunks), media_type=download.content_type, headers=headers)

    async def _delete_document(self, request: Request) -> Response:
        document_id = _required_query(request, "documentId")
        memory = await self._memory()
        index = memory.index_name(request.query_params.get("index"))
        await memory.delete_document(document_id, index=index)
        accepted = DeleteAccepted(
            index=index,
            document_id=document_id,
            message="Document deletion accepted: it runs in the background",
        )
        return _json_response(accepted, status_code=202)

    async def _list_indexes(self, request: Request) -> Response:
        memory = await self._memory()
        names = await memory.list_indexes()
        return _json_response(IndexCollection(results=[IndexDetails(name=name) for name in names]))

    async def _delete_index(self, request: Request) -> Response:
        memory = await self._memory()
        index = memory.index_name(request.query_params.get("index"))
        await memory.delete_index(index)
        accepted = DeleteAccepted(index=index, message="Index deletion accepted: it runs in the background")
        return _json_response(accepted, status_code=202)

    async def _search(self, request: Request) -> Response:
        query = await _read_json(request, SearchQuery)
        if not query.query.strip():
            raise InvalidRequestError("query is missing: send a non-empty 'query'")
        memory = await self._memory()
        result = await memory.search(
            query.query,
            index=query.index,
            filters=query.filters,
            min_relevance=_min_relevance(query),
            limit=query.limit,
        )
        return _json_response(result)

    async def _ask(self, request: Request) -> Response:
        query = await _read_json(request, MemoryQuery)
        if not query.question.strip():
            raise InvalidRequestError("question is missing: send a non-empty 'question'")
        memory = await self._memory()
        if query.stream:
            return await _ask_stream(memory, query)
        answer = await memory.ask(
            query.question, index=query.index, filters=query.filters, min_relevance=_min_relevance(query)
        )
        return _json_response(answer)


# ---------------------------------------------------------------- helpers


async def _ask_stream(memory: Memory, query: MemoryQuery) -> Response:
    """Stream the answer as server-sent events: one `data:` line per MemoryAnswer piece, then `data: [DONE]`."""
    pieces = aiter(
        memory.ask_stream(
            query.question, index=query.index, filters=query.filters, min_relevance=_min_relevance(query)
        )
    )
    # Wait for the first piece before sending headers, so throttling or a bad index still gets a status code.
    first = await anext(pieces, None)

    async def events() -> AsyncIterator[bytes]:
        try:
            if first is not None:
                yield _sse_event(first)
            async for piece in pieces:
                yield _sse_event(piece)
        except Exception as error:  # headers are sent, so the error can only travel in the stream
            logger.exception("streamed answer to '%s' failed in index %s", query.question[:80], query.index)
            reason = (
                str(error)
                if isinstance(error, KernelMemoryError)
                else "the answer failed; see the service log"
            )
            yield _sse_event(
                MemoryAnswer(
                    stream_state="error", question=query.question, no_result=True, no_result_reason=reason
                )
            )
        yield SSE_DONE

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _sse_event(answer: MemoryAnswer) -> bytes:
    return b"data: " + json.dumps(dump_model(answer), ensure_ascii=False).encode() + b"\n\n"


def dump_model(model: BaseModel) -> dict[str, Any]:
    """Return the JSON body of a response model, with Kernel Memory's field names."""
    body = model.model_dump(mode="json", by_alias=True)
    # Kernel Memory omits `streamState` outside streaming; its schema does not allow null.
    if isinstance(model, MemoryAnswer) and body.get("streamState") is None:
        body.pop("streamState", None)
    return body


def _json_response(
    model: BaseModel, *, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return JSONResponse(dump_model(model), status_code=status_code, headers=headers)


async def _read_json(request: Request, model: type[ModelT]) -> ModelT:
    check_content_length(request, max_bytes=MAX_JSON_BYTES)
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_JSON_BYTES:
            raise PayloadTooLargeError(f"request body is over the limit of {MAX_JSON_BYTES} bytes")
    try:
        parsed = json.loads(body or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InvalidRequestError(f"request body is not valid JSON: {error}") from None
    if not isinstance(parsed, dict):
        raise InvalidRequestError(f"request body must be a JSON object with the fields of {model.__name__}")
    return model.model_validate(parsed)


def _required_query(request: Request, name: str) -> str:
    value = (request.query_params.get(name) or "").strip()
    if not value:
        raise InvalidRequestError(f"query parameter '{name}' is missing")
    return value


def _min_relevance(query: MemoryQuery | SearchQuery) -> float | None:
    # A request that does not set minRelevance gets the configured default.
    return query.min_relevance if "min_relevance" in query.model_fields_set else None


async def _prepend(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if first:
        yield first
    async for chunk in rest:
        yield chunk


def content_disposition(file_name: str) -> str:
    """Build an `attachment` disposition with an ASCII fallback and the exact UTF-8 name (RFC 6266)."""
    fallback = "".join(char if 32 <= ord(char) < 127 and char not in '"\\' else "_" for char in file_name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(file_name, safe='')}"

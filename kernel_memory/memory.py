"""The `Memory` facade: import documents, follow their status, search, ask, delete.

The CLI, the HTTP handlers and the Functions app all go through this class.
It is built from `Settings`; the step dispatcher decides whether the pipeline
runs in this process or through storage queues.
"""

from __future__ import annotations

import logging
import mimetypes
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kernel_memory.errors import InvalidRequestError, NotFoundError, UnsupportedContentError
from kernel_memory.extraction import detect_mime_type, is_supported
from kernel_memory.models import MemoryAnswer, MemoryFilter, PipelineState, SearchResult, TagCollection
from kernel_memory.pipeline.context import PipelineContext
from kernel_memory.pipeline.orchestrator import PIPELINE_STEPS, Dispatcher, Pipeline, UploadedFile
from kernel_memory.retrieval.service import AskRequest, Retriever
from kernel_memory.settings import Settings
from kernel_memory.storage.paths import sanitize_file_name
from kernel_memory.validation import (
    clean_document_id,
    clean_index_name,
    validate_file,
    validate_steps,
    validate_tags,
)

logger = logging.getLogger(__name__)

__all__ = ["Download", "Memory", "UploadedFile"]


@dataclass(slots=True)
class Download:
    file_name: str
    content_type: str
    size: int
    chunks: AsyncIterator[bytes]


class Memory:
    def __init__(self, settings: Settings, ctx: PipelineContext, *, dispatcher: Dispatcher | None = None) -> None:
        self.settings = settings
        self.ctx = ctx
        self.pipeline = Pipeline(ctx, dispatcher=dispatcher)
        self.retriever = Retriever(
            settings, memory_db=ctx.memory_db, embedder=ctx.embedder, text_generator=ctx.text_generator
        )
        self._in_process = None
        if dispatcher is None:
            from kernel_memory.pipeline.in_process import InProcessDispatcher

            self._in_process = InProcessDispatcher(self.pipeline)

    @classmethod
    def from_settings(cls, settings: Settings | None = None, *, dispatcher: Dispatcher | None = None) -> Memory:
        """Build every adapter the settings name; models and SDKs load on first use."""
        from kernel_memory.ai.factory import build_embedding_generator, build_text_generator
        from kernel_memory.memorydb.factory import build_memory_db
        from kernel_memory.storage.factory import build_document_storage

        settings = settings or Settings()
        ctx = PipelineContext(
            settings=settings,
            storage=build_document_storage(settings),
            memory_db=build_memory_db(settings),
            embedder=build_embedding_generator(settings),
            text_generator=build_text_generator(settings),
            ocr=_build_ocr(settings),
        )
        if dispatcher is None and settings.queue.type == "azure_queue":
            from kernel_memory.queues.dispatcher import QueueDispatcher
            from kernel_memory.queues.factory import build_queue_client

            dispatcher = QueueDispatcher(build_queue_client(settings), prefix=settings.queue.prefix)
        return cls(settings, ctx, dispatcher=dispatcher)

    # ------------------------------------------------------------ import

    def index_name(self, index: str | None) -> str:
        return clean_index_name(index, default=self.settings.default_index)

    async def import_files(
        self,
        files: Sequence[UploadedFile],
        *,
        index: str | None = None,
        document_id: str | None = None,
        tags: TagCollection | None = None,
        steps: Sequence[str] | None = None,
        args: dict[str, Any] | None = None,
    ) -> PipelineState:
        """Store the files as one document and start its pipeline; returns the initial state.

        Rejects at once what can never succeed: empty files, unknown types, bad tags.
        """
        index = self.index_name(index)
        document_id = clean_document_id(document_id)
        tags = tags or {}
        validate_tags(tags)
        steps = validate_steps(steps or self.settings.default_steps, PIPELINE_STEPS)

        checked: dict[str, UploadedFile] = {}
        for file in files:
            name = sanitize_file_name(file.name)
            validate_file(name, file.data)
            if name in checked:
                raise InvalidRequestError(f"file name '{name}' appears twice in one upload: rename one of them")
            mime_type = detect_mime_type(file.data, file_name=name, declared=file.content_type)
            if not is_supported(mime_type):
                raise UnsupportedContentError(f"unsupported file type '{mime_type}': {name}")
            checked[name] = UploadedFile(name=name, data=file.data, content_type=mime_type)

        return await self.pipeline.start(
            index=index, document_id=document_id, files=list(checked.values()), tags=tags, steps=steps, args=args
        )

    async def import_paths(
        self,
        paths: Sequence[Path],
        *,
        index: str | None = None,
        document_id: str | None = None,
        tags: TagCollection | None = None,
        steps: Sequence[str] | None = None,
        args: dict[str, Any] | None = None,
    ) -> PipelineState:
        files = [UploadedFile(name=path.name, data=path.read_bytes()) for path in paths]
        return await self.import_files(
            files, index=index, document_id=document_id, tags=tags, steps=steps, args=args
        )

    async def wait_for_pipeline(self) -> None:
        """With the in-process pipeline, wait until every queued step has run."""
        if self._in_process is not None:
            await self._in_process.drain()

    # ------------------------------------------------------------ status and files

    async def get_status(self, index: str | None, document_id: str) -> PipelineState:
        index = self.index_name(index)
        state = await self.pipeline.states.try_load(index, clean_document_id(document_id))
        if state is None:
            raise NotFoundError(f"document '{document_id}' not found in index '{index}'")
        return state

    async def is_ready(self, index: str | None, document_id: str) -> bool:
        try:
            state = await self.get_status(index, document_id)
        except NotFoundError:
            return False
        return state.completed

    async def download(self, index: str | None, document_id: str, file_name: str) -> Download:
        state = await self.get_status(index, document_id)
        file = next((f for f in state.files if f.name == file_name), None)
        if file is None:
            raise NotFoundError(f"file '{file_name}' not found in document '{document_id}'")
        content_type = file.mime_type or mimetypes.guess_type(file_name)[0] or "application/octet-stream"
        chunks = self.ctx.storage.stream_file(state.index, state.document_id, file_name)
        return Download(file_name=file_name, content_type=content_type, size=file.size, chunks=chunks)

    # ------------------------------------------------------------ retrieval

    async def search(
        self,
        query: str,
        *,
        index: str | None = None,
        filters: Sequence[MemoryFilter] | None = None,
        min_relevance: float | None = None,
        limit: int = -1,
    ) -> SearchResult:
        return await self.retriever.search(
            self.index_name(index),
            query,
            filters=filters,
            min_relevance=self._min_relevance(min_relevance),
            limit=limit,
        )

    async def ask(
        self,
        question: str,
        *,
        index: str | None = None,
        filters: Sequence[MemoryFilter] | None = None,
        min_relevance: float | None = None,
    ) -> MemoryAnswer:
        return await self.retriever.ask(self._ask_request(question, index, filters, min_relevance))

    def ask_stream(
        self,
        question: str,
        *,
        index: str | None = None,
        filters: Sequence[MemoryFilter] | None = None,
        min_relevance: float | None = None,
    ) -> AsyncIterator[MemoryAnswer]:
        return self.retriever.ask_stream(self._ask_request(question, index, filters, min_relevance))

    def _ask_request(
        self, question: str, index: str | None, filters: Sequence[MemoryFilter] | None, min_relevance: float | None
    ) -> AskRequest:
        return AskRequest(
            index=self.index_name(index),
            question=question,
            filters=filters,
            min_relevance=self._min_relevance(min_relevance),
        )

    def _min_relevance(self, value: float | None) -> float:
        return self.settings.retrieval.min_relevance if value is None else value

    # ------------------------------------------------------------ deletes and indexes

    async def delete_document(self, document_id: str, *, index: str | None = None) -> None:
        """Queue the deletion of a document's records, files and status."""
        await self.pipeline.request_delete_document(self.index_name(index), clean_document_id(document_id))

    async def delete_index(self, index: str | None = None) -> None:
        await self.pipeline.request_delete_index(self.index_name(index))

    async def list_indexes(self) -> list[str]:
        return sorted(await self.ctx.memory_db.list_indexes())

    async def aclose(self) -> None:
        if self._in_process is not None:
            await self._in_process.aclose()
        components = (self.ctx.storage, self.ctx.memory_db, self.ctx.embedder, self.ctx.text_generator)
        if self._in_process is None:
            # A queue dispatcher owns a queue client with open connections.
            components = (*components, self.pipeline.dispatcher)
        for component in components:
            close = getattr(component, "aclose", None) or getattr(component, "close", None)
            if close is not None:
                result = close()
                if hasattr(result, "__await__"):
                    await result


def _build_ocr(settings: Settings):
    if settings.ocr.type == "none":
        return None
    from kernel_memory.errors import PermanentError

    # TODO: add the Azure AI Document Intelligence adapter; until then images are skipped.
    raise PermanentError(
        "KM_OCR__TYPE=azure_document_intelligence is not available yet: set KM_OCR__TYPE=none"
    )

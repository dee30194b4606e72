"""Starlette app of `kernel-memory serve`: the API's handlers, plus the queue worker when queues are Azure's."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from http import HTTPStatus
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kernel_memory.http.handlers import ApiHandlers
from kernel_memory.http.lazy_memory import LazyMemory
from kernel_memory.http.problems import problem_response
from kernel_memory.http.routes import ROUTES
from kernel_memory.settings import Settings

if TYPE_CHECKING:
    from kernel_memory.memory import Memory

logger = logging.getLogger(__name__)


def create_app(
    settings: Settings | None = None, *, memory: Memory | None = None, run_worker: bool = False
) -> Starlette:
    """Build the app. A given `memory` is used and left open; otherwise one is built on first use and closed at shutdown.

    With `run_worker` and `KM_QUEUE__TYPE=azure_queue`, the app's lifespan runs a
    `QueueWorker` that polls the step queues; with the in-process queue the
    steps run in this process anyway.
    """
    if settings is None:
        settings = memory.settings if memory is not None else Settings()
    provider = LazyMemory(settings, memory=memory)
    handlers = ApiHandlers(settings, provider)
    routes = [Route(spec.path, handlers.handler(spec.name), methods=[spec.method]) for spec in ROUTES]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            if memory is None:
                stack.push_async_callback(provider.aclose)
            if run_worker and settings.queue.type == "azure_queue":
                await _start_worker(stack, await provider())
            yield

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_exception},
    )
    app.state.handlers = handlers
    app.state.memory = provider
    return app


async def _start_worker(stack: contextlib.AsyncExitStack, memory: Memory) -> None:
    from kernel_memory.queues import build_queue_client
    from kernel_memory.worker import QueueWorker

    consumer = build_queue_client(memory.settings)
    assert consumer is not None, "azure_queue settings always build a queue client"
    stack.push_async_callback(consumer.close)
    worker = QueueWorker(memory, consumer)
    worker.start()

    async def stop() -> None:
        logger.info("stopping the queue worker: the messages in progress finish first")
        worker.stop()
        await worker.wait()

    stack.push_async_callback(stop)


async def _http_exception(request: Request, error: Exception) -> Response:
    # Unknown routes and wrong methods get problem details too, like every other error.
    assert isinstance(error, HTTPException)
    return problem_response(
        error.status_code,
        title=HTTPStatus(error.status_code).phrase,
        detail=f"{request.method} {request.url.path}: {error.detail}",
        instance=request.url.path,
        headers=error.headers,
    )

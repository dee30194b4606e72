"""Load and save `__pipeline_status.json`, guarded by ETag so concurrent workers never overwrite each other."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from kernel_memory.errors import ConcurrencyError, NotFoundError
from kernel_memory.models import PipelineState, utc_now
from kernel_memory.storage.base import DocumentStorage

logger = logging.getLogger(__name__)

# Compare-and-swap attempts before giving up; each conflict means another worker saved in between.
MAX_UPDATE_ATTEMPTS = 10


class StateStore:
    def __init__(self, storage: DocumentStorage) -> None:
        self._storage = storage

    async def load(self, index: str, document_id: str) -> tuple[PipelineState, str]:
        """Return the state and its ETag; `NotFoundError` when the document has none."""
        data, etag = await self._storage.read_status(index, document_id)
        return PipelineState.model_validate_json(data), etag

    async def try_load(self, index: str, document_id: str) -> PipelineState | None:
        try:
            state, _ = await self.load(index, document_id)
        except NotFoundError:
            return None
        return state

    async def save(self, state: PipelineState, *, etag: str | None) -> str:
        state.last_update = utc_now()
        data = state.model_dump_json(indent=2).encode("utf-8")
        return await self._storage.write_status(state.index, state.document_id, data, etag=etag)

    async def update(
        self,
        index: str,
        document_id: str,
        change: Callable[[PipelineState], bool | None] | Callable[[PipelineState], Awaitable[bool | None]],
    ) -> PipelineState | None:
        """Apply `change` to the stored state and save it, retrying on ETag conflicts.

        `change` returns False to leave the state unsaved (for example when the
        message it acts on turned out to be stale). Returns the saved state, or
        None when there was no state or `change` declined.
        """
        for attempt in range(1, MAX_UPDATE_ATTEMPTS + 1):
            try:
                state, etag = await self.load(index, document_id)
            except NotFoundError:
                return None

            outcome = change(state)
            if isinstance(outcome, Awaitable):
                outcome = await outcome
            if outcome is False:
                return None

            try:
                await self.save(state, etag=etag)
                return state
            except ConcurrencyError:
                logger.info(
                    "status of %s/%s changed while saving, retrying (attempt %d)", index, document_id, attempt
                )
        raise ConcurrencyError(
            f"status of {index}/{document_id} kept changing during {MAX_UPDATE_ATTEMPTS} save attempts"
        )

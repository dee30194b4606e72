"""A `Memory` built on first use, so importing the app or the Functions module builds nothing."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from kernel_memory.settings import Settings

if TYPE_CHECKING:
    from kernel_memory.memory import Memory

logger = logging.getLogger(__name__)


class LazyMemory:
    """Awaitable provider of one shared `Memory`: `memory = await provider()`."""

    def __init__(self, settings: Settings | Callable[[], Settings], *, memory: Memory | None = None) -> None:
        self._settings_source = settings
        self._memory = memory
        self._lock: asyncio.Lock | None = None

    @property
    def built(self) -> bool:
        return self._memory is not None

    def settings(self) -> Settings:
        if self._memory is not None:
            return self._memory.settings
        if isinstance(self._settings_source, Settings):
            return self._settings_source
        # Read the settings once; the Memory built later uses the same object.
        self._settings_source = self._settings_source()
        return self._settings_source

    async def __call__(self) -> Memory:
        if self._memory is None:
            # The lock is created here, inside the running event loop that uses it.
            self._lock = self._lock or asyncio.Lock()
            async with self._lock:
                if self._memory is None:
                    from kernel_memory.memory import Memory

                    self._memory = Memory.from_settings(self.settings())
                    logger.info(
                        "memory built: storage %s, queue %s",
                        self.settings().storage.type,
                        self.settings().queue.type,
                    )
        return self._memory

    async def aclose(self) -> None:
        if self._memory is not None:
            await self._memory.aclose()
            self._memory = None

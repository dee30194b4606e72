"""Choice of the queue adapter from the settings."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from kernel_memory.azure_auth import is_configured
from kernel_memory.settings import Settings

if TYPE_CHECKING:
    from kernel_memory.queues.azure_queue import AzureQueueClient

logger = logging.getLogger(__name__)


def build_queue_client(settings: Settings) -> AzureQueueClient | None:
    """Return the Azure Storage Queue client for `azure_queue`, or None for `in_process`.

    The in-process queue belongs to the pipeline, which builds it itself. When
    `KM_QUEUE__AZURE__*` names no account, the queues use the storage account
    of `KM_STORAGE__AZURE__*`, as one Functions storage account serves both.
    """
    if settings.queue.type != "azure_queue":
        return None

    from kernel_memory.queues.azure_queue import AzureQueueClient

    queue_settings = settings.queue
    if not is_configured(queue_settings.azure) and is_configured(settings.storage.azure):
        logger.info("queues use the storage account of KM_STORAGE__AZURE, as KM_QUEUE__AZURE is not set")
        queue_settings = queue_settings.model_copy(update={"azure": settings.storage.azure})
    return AzureQueueClient(queue_settings)

"""Azure Storage service clients from `AzureStorageSettings`: a connection string or an identity.

A connection string wins when set (Azurite, or an account key). Otherwise the
clients authenticate with `DefaultAzureCredential` (managed identity in Azure,
the Azure CLI or VS Code login on a workstation) against the service URIs.

The settings mirror the identity-based connections of Azure Functions, so one
storage account can be described the same way for the Functions host and for
this package:

    Functions app setting ({Connection}=AzureWebJobsStorage)  this package (storage; queues use KM_QUEUE__AZURE__)
    --------------------------------------------------------  -------------------------------------------------
    AzureWebJobsStorage                  (connection string)  KM_STORAGE__AZURE__CONNECTION_STRING
    AzureWebJobsStorage__accountName                          KM_STORAGE__AZURE__ACCOUNT_NAME
    AzureWebJobsStorage__blobServiceUri                       KM_STORAGE__AZURE__BLOB_SERVICE_URI
    AzureWebJobsStorage__queueServiceUri                      KM_STORAGE__AZURE__QUEUE_SERVICE_URI
    AzureWebJobsStorage__credential = managedidentity         implied: no connection string means an identity
    AzureWebJobsStorage__clientId                             KM_STORAGE__AZURE__CREDENTIAL_CLIENT_ID

With only an account name, the URIs are those of the public Azure cloud
(`https://{account}.blob.core.windows.net`, `https://{account}.queue.core.windows.net`);
sovereign clouds need the URIs set explicitly.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Literal

from kernel_memory.errors import PermanentError
from kernel_memory.settings import AzureStorageSettings

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential
    from azure.storage.blob.aio import BlobServiceClient
    from azure.storage.queue.aio import QueueServiceClient

logger = logging.getLogger(__name__)

StorageService = Literal["blob", "queue"]


def is_configured(settings: AzureStorageSettings) -> bool:
    """Tell whether `settings` name a storage account in any of the supported ways."""
    return bool(
        settings.connection_string
        or settings.account_name
        or settings.blob_service_uri
        or settings.queue_service_uri
    )


def service_uri(
    settings: AzureStorageSettings, service: StorageService, *, setting_prefix: str = "KM_STORAGE__AZURE"
) -> str:
    """Return the endpoint of `service` for identity-based access, or raise `PermanentError`.

    An explicit `blob_service_uri` / `queue_service_uri` wins over the URI derived from `account_name`.
    """
    explicit = settings.blob_service_uri if service == "blob" else settings.queue_service_uri
    if explicit:
        return explicit.rstrip("/")

    if settings.account_name:
        return f"https://{settings.account_name}.{service}.core.windows.net"

    raise PermanentError(
        f"Azure Storage is not configured for the {service} service: set {setting_prefix}__CONNECTION_STRING"
        f" or {setting_prefix}__ACCOUNT_NAME (or {setting_prefix}__{service.upper()}_SERVICE_URI)"
    )


def create_credential(settings: AzureStorageSettings) -> AsyncTokenCredential:
    """Return a `DefaultAzureCredential`, pinned to a user-assigned identity when a client id is set."""
    from azure.identity.aio import DefaultAzureCredential

    if settings.credential_client_id:
        return DefaultAzureCredential(managed_identity_client_id=settings.credential_client_id)
    return DefaultAzureCredential()


def create_blob_service_client(
    settings: AzureStorageSettings, *, setting_prefix: str = "KM_STORAGE__AZURE", **options: Any
) -> tuple[BlobServiceClient, AsyncTokenCredential | None]:
    """Return an async `BlobServiceClient` and the credential to close with it (None for a connection string).

    `options` go to the client unchanged (transfer sizes, retry settings).
    """
    from azure.storage.blob.aio import BlobServiceClient

    return _create_client(BlobServiceClient, "blob", settings, setting_prefix, options)


def create_queue_service_client(
    settings: AzureStorageSettings, *, setting_prefix: str = "KM_QUEUE__AZURE", **options: Any
) -> tuple[QueueServiceClient, AsyncTokenCredential | None]:
    """Return an async `QueueServiceClient` and the credential to close with it (None for a connection string)."""
    from azure.storage.queue.aio import QueueServiceClient

    return _create_client(QueueServiceClient, "queue", settings, setting_prefix, options)


def _create_client(
    client_class: Any,
    service: StorageService,
    settings: AzureStorageSettings,
    setting_prefix: str,
    options: dict[str, Any],
) -> tuple[Any, AsyncTokenCredential | None]:
    if settings.connection_string:
        connection_string = settings.connection_string.get_secret_value()
        return client_class.from_connection_string(connection_string, **options), None

    uri = service_uri(settings, service, setting_prefix=setting_prefix)
    credential = create_credential(settings)
    logger.info("connecting to %s service %s with an Azure identity", service, uri)
    return client_class(uri, credential=credential, **options), credential

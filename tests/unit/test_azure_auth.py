"""Azure Storage client settings: endpoint choice, identity, and the error when nothing is set."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from kernel_memory.azure_auth import (
    create_blob_service_client,
    create_queue_service_client,
    is_configured,
    service_uri,
)
from kernel_memory.errors import PermanentError
from kernel_memory.settings import AzureStorageSettings


def test_service_uri_from_account_name() -> None:
    settings = AzureStorageSettings(account_name="mystore")
    assert service_uri(settings, "blob") == "https://mystore.blob.core.windows.net"
    assert service_uri(settings, "queue") == "https://mystore.queue.core.windows.net"


def test_service_uri_explicit_wins() -> None:
    settings = AzureStorageSettings(
        account_name="mystore", blob_service_uri="https://mystore.blob.core.chinacloudapi.cn/"
    )
    assert service_uri(settings, "blob") == "https://mystore.blob.core.chinacloudapi.cn"


def test_service_uri_queue_needs_its_own_uri() -> None:
    settings = AzureStorageSettings(blob_service_uri="https://a.blob.core.windows.net")
    with pytest.raises(PermanentError, match="QUEUE_SERVICE_URI"):
        service_uri(settings, "queue")


def test_unconfigured_names_settings() -> None:
    with pytest.raises(
        PermanentError, match="KM_STORAGE__AZURE__CONNECTION_STRING or KM_STORAGE__AZURE__ACCOUNT_NAME"
    ):
        create_blob_service_client(AzureStorageSettings())


def test_unconfigured_queue_names_queue_settings() -> None:
    with pytest.raises(PermanentError, match="KM_QUEUE__AZURE__ACCOUNT_NAME"):
        create_queue_service_client(AzureStorageSettings())


def test_is_configured() -> None:
    assert not is_configured(AzureStorageSettings())
    assert is_configured(AzureStorageSettings(account_name="x"))


async def test_identity_client_uses_credential() -> None:
    from azure.identity.aio import DefaultAzureCredential

    settings = AzureStorageSettings(
        account_name="mystore", credential_client_id="00000000-0000-0000-0000-000000000001"
    )
    client, credential = create_blob_service_client(settings)
    try:
        assert isinstance(credential, DefaultAzureCredential)
        assert client.url == "https://mystore.blob.core.windows.net/"
    finally:
        await client.close()
        await credential.close()


async def test_connection_string_client_has_no_credential() -> None:
    settings = AzureStorageSettings(
        connection_string=SecretStr("UseDevelopmentStorage=true"), account_name="ignored"
    )
    client, credential = create_queue_service_client(settings)
    try:
        assert credential is None
        assert client.account_name == "devstoreaccount1"
    finally:
        await client.close()

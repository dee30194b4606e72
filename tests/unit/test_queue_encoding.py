"""Queue message encoding as the Functions host reads it, queue names, and the queue factory."""

from __future__ import annotations

import base64
import json

import pytest
from pydantic import SecretStr

from kernel_memory.errors import InvalidRequestError
from kernel_memory.queues import (
    MAX_MESSAGE_BYTES,
    build_queue_client,
    decode_message,
    encode_message,
    poison_queue_name,
    queue_name_for,
)
from kernel_memory.settings import AzureStorageSettings, QueueSettings, Settings, StorageSettings

BODY = {"index": "default", "document_id": "Team's Menu", "execution_id": "e1", "note": "<&> 日本 ✓"}


def test_encode_base64_is_host_readable() -> None:
    text = encode_message(BODY, "base64")
    assert json.loads(base64.b64decode(text).decode("utf-8")) == BODY


def test_encode_base64_is_ascii() -> None:
    assert encode_message(BODY, "base64").isascii()


def test_encode_none_is_plain_json() -> None:
    assert json.loads(encode_message(BODY, "none")) == BODY


@pytest.mark.parametrize("encoding", ["base64", "none"])
def test_encoding_round_trip(encoding: str) -> None:
    assert decode_message(encode_message(BODY, encoding), encoding) == BODY


def test_decode_base64_made_elsewhere() -> None:
    text = base64.b64encode(json.dumps({"a": "é"}).encode()).decode()
    assert decode_message(text, "base64") == {"a": "é"}


def test_decode_plain_json_as_base64_rejected() -> None:
    with pytest.raises(InvalidRequestError, match="messageEncoding"):
        decode_message('{"index": "x"}', "base64")


def test_decode_base64_as_plain_rejected() -> None:
    with pytest.raises(InvalidRequestError, match="not JSON"):
        decode_message(encode_message(BODY, "base64"), "none")


def test_decode_base64_of_non_utf8_rejected() -> None:
    with pytest.raises(InvalidRequestError, match="UTF-8"):
        decode_message(base64.b64encode(b"\xff\xfe").decode(), "base64")


def test_decode_json_array_rejected() -> None:
    with pytest.raises(InvalidRequestError, match="not a JSON object"):
        decode_message("[1, 2]", "none")


def test_encode_unknown_encoding_rejected() -> None:
    with pytest.raises(InvalidRequestError, match="'utf8'"):
        encode_message(BODY, "utf8")  # type: ignore[arg-type]


def test_encode_over_64_kib_rejected() -> None:
    # 48 KiB of JSON grows to 64 KiB in base64, so this fits as plain text but not encoded.
    body = {"data": "x" * 50_000}
    encode_message(body, "none")
    with pytest.raises(InvalidRequestError, match="maximum is 65536"):
        encode_message(body, "base64")


def test_encode_at_limit_accepted() -> None:
    # `{"d":"` plus `"}` is 8 bytes of JSON around the string.
    body = {"d": "x" * (MAX_MESSAGE_BYTES - 8)}
    assert len(encode_message(body, "none").encode()) == MAX_MESSAGE_BYTES


def test_pointer_with_long_ids_fits() -> None:
    body = {"index": "i" * 255, "document_id": "d" * 255, "execution_id": "e" * 64}
    assert len(encode_message(body, "base64")) < 2_000


@pytest.mark.parametrize(
    ("step", "prefix", "expected"),
    [
        ("extract", "km", "km-extract"),
        ("gen_embeddings", "km", "km-gen-embeddings"),
        ("save_records", "KM_Prod", "km-prod-save-records"),
    ],
)
def test_queue_name_for(step: str, prefix: str, expected: str) -> None:
    assert queue_name_for(step, prefix) == expected


@pytest.mark.parametrize("prefix", ["", "km.", "k m", "km-", "-km", "ü"])
def test_queue_name_invalid_prefix_rejected(prefix: str) -> None:
    with pytest.raises(InvalidRequestError, match="queue name"):
        queue_name_for("extract", prefix)


def test_queue_name_double_dash_rejected() -> None:
    with pytest.raises(InvalidRequestError, match="single dashes"):
        queue_name_for("_extract", "km")


def test_queue_name_leaves_room_for_poison() -> None:
    with pytest.raises(InvalidRequestError, match="KM_QUEUE__PREFIX"):
        queue_name_for("extract", "k" * 50)


def test_poison_queue_name() -> None:
    assert poison_queue_name("km-extract") == "km-extract-poison"


def test_factory_in_process_returns_none() -> None:
    assert build_queue_client(Settings(queue=QueueSettings(type="in_process"))) is None


def test_factory_uses_storage_account_when_queue_unset() -> None:
    from kernel_memory.queues.azure_queue import AzureQueueClient

    storage_azure = AzureStorageSettings(account_name="mystore")
    settings = Settings(
        storage=StorageSettings(type="azure_blob", azure=storage_azure),
        queue=QueueSettings(type="azure_queue", message_encoding="none"),
    )
    client = build_queue_client(settings)
    assert isinstance(client, AzureQueueClient)
    assert client._settings.azure.account_name == "mystore"
    assert client.encoding == "none"


def test_factory_keeps_queue_account() -> None:
    settings = Settings(
        storage=StorageSettings(azure=AzureStorageSettings(account_name="blobs")),
        queue=QueueSettings(
            type="azure_queue",
            azure=AzureStorageSettings(connection_string=SecretStr("UseDevelopmentStorage=true")),
        ),
    )
    client = build_queue_client(settings)
    assert client is not None
    assert client._settings.azure.account_name is None

"""Queue message text as the Azure Functions host reads it (host.json `extensions.queues.messageEncoding`).

With `base64` (the host's default) the host base64-decodes the message text and
hands the function the UTF-8 JSON. With `none` the text is the JSON itself.
Producer and trigger must agree, so `KM_QUEUE__MESSAGE_ENCODING` has to match host.json.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Literal

from kernel_memory.errors import InvalidRequestError

MessageEncoding = Literal["base64", "none"]

# Azure Storage queues reject messages over 64 KiB.
MAX_MESSAGE_BYTES = 64 * 1024


def encode_message(body: dict[str, Any], encoding: MessageEncoding) -> str:
    """Return the queue message text for `body`; raise `InvalidRequestError` when it exceeds 64 KiB."""
    payload = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    if encoding == "base64":
        text = base64.b64encode(payload.encode("utf-8")).decode("ascii")
    elif encoding == "none":
        text = payload
    else:
        raise InvalidRequestError(f"message encoding {encoding!r} is unknown: use 'base64' or 'none'")

    size = len(text.encode("utf-8"))
    if size > MAX_MESSAGE_BYTES:
        # Pipeline messages are pointers to the status file, so this means a caller put state in the body.
        raise InvalidRequestError(
            f"queue message is {size} bytes after {encoding} encoding, the maximum is {MAX_MESSAGE_BYTES};"
            f" send a pointer (index, document id, execution id) instead of the data (keys: {sorted(body)})"
        )
    return text


def decode_message(text: str, encoding: MessageEncoding) -> dict[str, Any]:
    """Return the JSON object in a queue message's text, decoding it as the Functions host would."""
    if encoding == "base64":
        try:
            payload = base64.b64decode(text, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as error:
            raise InvalidRequestError(
                f"queue message {text[:60]!r} is not base64 of UTF-8 text ({error});"
                " check that KM_QUEUE__MESSAGE_ENCODING matches host.json messageEncoding"
            ) from None
    elif encoding == "none":
        payload = text
    else:
        raise InvalidRequestError(f"message encoding {encoding!r} is unknown: use 'base64' or 'none'")

    try:
        body = json.loads(payload)
    except json.JSONDecodeError as error:
        raise InvalidRequestError(
            f"queue message {payload[:60]!r} is not JSON ({error});"
            " check that KM_QUEUE__MESSAGE_ENCODING matches host.json messageEncoding"
        ) from None

    if not isinstance(body, dict):
        raise InvalidRequestError(f"queue message {payload[:60]!r} is not a JSON object")
    return body

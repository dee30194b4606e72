"""Read an upload request: multipart form with files, index, document id, tags, steps and args.

The size limit is checked from `Content-Length` before any byte is read, and
enforced again while the body streams in, so a chunked request without a
length cannot exceed it either.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from kernel_memory.errors import InvalidRequestError, PayloadTooLargeError, UnsupportedContentError

# Form fields other than files: index, documentId, tags, steps, args. The tag
# limit is enforced later; this only stops a request made of endless fields.
MAX_FORM_FIELDS = 2000
# Longest single text field (a tag, the args JSON), in bytes.
MAX_FIELD_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class FilePart:
    name: str
    data: bytes
    content_type: str | None


@dataclass(slots=True)
class UploadForm:
    files: list[FilePart] = field(default_factory=list)
    index: str | None = None
    document_id: str | None = None
    # `key:value` strings, in the order sent.
    tags: list[str] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    args: dict[str, Any] = field(default_factory=dict)


def check_content_length(request: Request, *, max_bytes: int) -> None:
    """Reject a request whose declared length is over the limit, before reading its body."""
    declared = request.headers.get("content-length")
    if declared is None:
        return
    try:
        length = int(declared)
    except ValueError:
        raise InvalidRequestError(f"Content-Length '{declared}' is invalid: send a byte count") from None
    if length > max_bytes:
        raise PayloadTooLargeError(f"request body is {length} bytes, over the limit of {max_bytes} bytes")


async def read_upload_form(request: Request, *, max_bytes: int, max_files: int) -> UploadForm:
    """Parse the multipart body; every part with a file name is a file, whatever its field name."""
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise UnsupportedContentError(
            f"upload content type '{content_type or 'none'}' is not supported: send multipart/form-data"
        )
    check_content_length(request, max_bytes=max_bytes)

    parser = MultiPartParser(
        request.headers,
        _limited(request.stream(), max_bytes=max_bytes),
        max_files=max_files,
        max_fields=MAX_FORM_FIELDS,
        max_part_size=MAX_FIELD_BYTES,
    )
    try:
        form_data = await parser.parse()
    except MultiPartException as error:
        raise InvalidRequestError(f"multipart body is invalid: {error.message}") from None

    form = UploadForm()
    try:
        for name, value in form_data.multi_items():
            if isinstance(value, UploadFile):
                form.files.append(await _read_file(value))
            else:
                _add_field(form, name, value)
    finally:
        await form_data.close()
    if not form.files:
        raise InvalidRequestError("the upload contains no file: send at least one part with a file name")
    return form


async def _limited(stream: AsyncIterator[bytes], *, max_bytes: int) -> AsyncGenerator[bytes, None]:
    received = 0
    async for chunk in stream:
        received += len(chunk)
        if received > max_bytes:
            raise PayloadTooLargeError(f"request body is over the limit of {max_bytes} bytes")
        yield chunk


async def _read_file(upload: UploadFile) -> FilePart:
    data = await upload.read()
    return FilePart(name=upload.filename or "", data=data, content_type=upload.content_type)


def _add_field(form: UploadForm, name: str, value: str) -> None:
    # Kernel Memory's clients send camelCase names; snake_case is accepted too.
    key = name.strip().lower().replace("_", "")
    if key == "index":
        form.index = value
    elif key == "documentid":
        form.document_id = value
    elif key == "tags":
        if value.strip():
            form.tags.append(value)
    elif key == "steps":
        form.steps.extend(step.strip() for step in value.split(",") if step.strip())
    elif key == "args":
        form.args.update(_parse_args(value))


def _parse_args(value: str) -> dict[str, Any]:
    if not value.strip():
        return {}
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as error:
        raise InvalidRequestError(f"args is not valid JSON ({error.msg}): send a JSON object") from None
    if not isinstance(parsed, dict):
        raise InvalidRequestError("args must be a JSON object of step arguments")
    return parsed

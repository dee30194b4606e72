"""Validation of index names, document ids and file names before they become paths or blob names.

Both storage adapters build names as `{index}/{documentId}/{file}`, so a value
that contains a separator or `..` could reach another document's folder, or
leave the storage root on disk. Every value is checked here before any I/O.
"""

from __future__ import annotations

import re

from kernel_memory.errors import InvalidRequestError
from kernel_memory.models import STATUS_FILE_NAME

# Kernel Memory's rule for ids: letters, digits, '.', '_' and '-'.
_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]+")
ID_ALLOWED_CHARACTERS = "letters A-Z and a-z, digits 0-9, '.', '_' and '-'"

# Most file systems limit one path component to 255 bytes (NAME_MAX on Linux, ext4 and XFS).
MAX_NAME_BYTES = 255

# Names the local adapter uses for its own files next to the uploaded ones.
# They are rejected as file names so a user file can never replace them.
STATUS_LOCK_FILE_NAME = STATUS_FILE_NAME + ".lock"
TEMP_FILE_PREFIX = ".km-tmp-"


def _validate_id(value: str, kind: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidRequestError(f"{kind} {value!r} is invalid: it must not be empty")

    if not _ID_PATTERN.fullmatch(value) or value in (".", ".."):
        raise InvalidRequestError(
            f"{kind} {value!r} is invalid: use only {ID_ALLOWED_CHARACTERS}, and not '.' or '..' alone"
        )

    if len(value) > MAX_NAME_BYTES:
        raise InvalidRequestError(
            f"{kind} {value[:40]!r}... is invalid: it has {len(value)} characters, the maximum is {MAX_NAME_BYTES}"
        )
    return value


def validate_index(index: str) -> str:
    """Return `index` unchanged, or raise `InvalidRequestError` naming the allowed characters."""
    return _validate_id(index, "index name")


def validate_document_id(document_id: str) -> str:
    """Return `document_id` unchanged, or raise `InvalidRequestError` naming the allowed characters."""
    return _validate_id(document_id, "document id")


def sanitize_file_name(file_name: str) -> str:
    """Return the last path component of `file_name`, or raise `InvalidRequestError`.

    Clients send names such as `C:\\Users\\me\\report.pdf` or `docs/report.pdf`, so
    folders (with `/` or `\\` separators) are dropped and `report.pdf` is kept.
    A name that is empty after that, is `.` or `..`, contains a control character
    (NUL included), is longer than 255 UTF-8 bytes or is reserved for the
    pipeline status is rejected.
    """
    if not isinstance(file_name, str) or not file_name:
        raise InvalidRequestError(f"file name {file_name!r} is invalid: it must not be empty")

    if any(ord(character) < 0x20 or ord(character) == 0x7F for character in file_name):
        raise InvalidRequestError(f"file name {file_name!r} is invalid: it contains a control character")

    name = file_name.replace("\\", "/").rsplit("/", 1)[-1]
    if name in ("", ".", ".."):
        raise InvalidRequestError(
            f"file name {file_name!r} is invalid: it names a folder, not a file; send the file's own name"
        )

    size = len(name.encode("utf-8"))
    if size > MAX_NAME_BYTES:
        raise InvalidRequestError(
            f"file name {name[:40]!r}... is invalid: it is {size} bytes in UTF-8, the maximum is {MAX_NAME_BYTES}"
        )

    if name in (STATUS_FILE_NAME, STATUS_LOCK_FILE_NAME) or name.startswith(TEMP_FILE_PREFIX):
        raise InvalidRequestError(
            f"file name {name!r} is reserved for the pipeline; rename the file before uploading it"
        )
    return name


def is_internal_file(name: str) -> bool:
    """Tell whether `name` is the pipeline status or one of the adapters' own helper files."""
    return name in (STATUS_FILE_NAME, STATUS_LOCK_FILE_NAME) or name.startswith(TEMP_FILE_PREFIX)


def document_prefix(index: str, document_id: str) -> str:
    """Return the validated `{index}/{documentId}/` prefix shared by blob names and folders."""
    return f"{validate_index(index)}/{validate_document_id(document_id)}/"


def index_prefix(index: str) -> str:
    """Return the validated `{index}/` prefix."""
    return f"{validate_index(index)}/"

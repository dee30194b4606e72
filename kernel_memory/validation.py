"""Checks on what callers send: index names, document ids, tags, steps and files."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence

from kernel_memory.errors import EmptyFileError, InvalidRequestError
from kernel_memory.models import RESERVED_TAG_PREFIX, TagCollection

# Document ids become folder and blob names: Kernel Memory allows letters, digits, '.', '_' and '-'.
_DOCUMENT_ID = re.compile(r"^[A-Za-z0-9._-]{1,255}$")
_INDEX_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,127}$")

# Tag limits keep records, filters and status files small.
MAX_TAG_KEY_LENGTH = 128
MAX_TAG_VALUE_LENGTH = 1024
MAX_TAGS = 100
MAX_TAGS_BYTES = 16 * 1024


def clean_index_name(index: str | None, *, default: str) -> str:
    """Return the normalised index name: trimmed, lower case, the default when empty."""
    name = (index or "").strip().lower() or default
    if not _INDEX_NAME.match(name):
        raise InvalidRequestError(
            f"index name '{name}' is invalid: use up to 128 lowercase letters, digits, '-' and '_',"
            " starting with a letter or digit"
        )
    return name


def clean_document_id(document_id: str | None) -> str:
    """Return the id, or a new random one when none was given (as Kernel Memory does)."""
    if document_id is None or not document_id.strip():
        return uuid.uuid4().hex
    document_id = document_id.strip()
    if document_id in {".", ".."} or not _DOCUMENT_ID.match(document_id):
        raise InvalidRequestError(
            f"document id '{document_id}' is invalid: use up to 255 letters, digits, '.', '_' and '-'"
        )
    return document_id


def document_id_from_file_name(file_name: str) -> str:
    """Derive a stable document id from a file name, for imports that name no id."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", file_name).strip("-.") or "document"
    return stem[:255]


def parse_tags(pairs: Iterable[str]) -> TagCollection:
    """Parse `key:value` strings; the value may itself contain ':'."""
    tags: TagCollection = {}
    for pair in pairs:
        key, separator, value = pair.partition(":")
        if not separator:
            raise InvalidRequestError(f"tag '{pair}' is invalid: write it as key:value")
        tags.setdefault(key.strip(), []).append(value.strip())
    validate_tags(tags)
    return tags


def validate_tags(tags: TagCollection) -> None:
    count = 0
    size = 0
    for key, values in tags.items():
        if not key:
            raise InvalidRequestError("tag key is empty: write tags as key:value")
        if ":" in key:
            raise InvalidRequestError(f"tag key '{key}' is invalid: keys may not contain ':'")
        if key.startswith(RESERVED_TAG_PREFIX):
            raise InvalidRequestError(f"tag key '{key}' is invalid: keys starting with '__' are reserved")
        if len(key) > MAX_TAG_KEY_LENGTH:
            raise InvalidRequestError(f"tag key '{key[:40]}...' is too long: at most {MAX_TAG_KEY_LENGTH} characters")
        for value in values:
            if len(value) > MAX_TAG_VALUE_LENGTH:
                raise InvalidRequestError(
                    f"value of tag '{key}' is too long: at most {MAX_TAG_VALUE_LENGTH} characters"
                )
            count += 1
            size += len(key.encode()) + len(value.encode())
    if count > MAX_TAGS:
        raise InvalidRequestError(f"too many tags: {count}, at most {MAX_TAGS} per document")
    if size > MAX_TAGS_BYTES:
        raise InvalidRequestError(f"tags are too large: {size} bytes, at most {MAX_TAGS_BYTES} per document")


def validate_steps(steps: Sequence[str], known: Iterable[str]) -> list[str]:
    known_steps = set(known)
    cleaned = [step.strip() for step in steps if step.strip()]
    unknown = [step for step in cleaned if step not in known_steps]
    if unknown:
        raise InvalidRequestError(
            f"unknown pipeline steps {unknown}: the steps are {', '.join(sorted(known_steps))}"
        )
    return cleaned


def validate_file(name: str, data: bytes) -> None:
    if not name or not name.strip():
        raise InvalidRequestError("file name is empty: every file needs a name")
    if len(data) == 0:
        raise EmptyFileError(f"file is empty: {name}")

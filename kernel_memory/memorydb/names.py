"""Index names: Kernel Memory's normalisation and the characters every memory DB accepts."""

from __future__ import annotations

import re

from kernel_memory.errors import InvalidRequestError

DEFAULT_INDEX = "default"
MAX_INDEX_NAME_LENGTH = 128

# Azure AI Search's rule for index names (its REST API "Naming rules" page): lowercase letters,
# digits, '-' and '_', starting with a letter or digit, no two '-' or '_' in a row. The SQLite
# memory DB applies it too, so an index moves between the two unchanged.
_INDEX_NAME = re.compile(r"[a-z0-9](?:[-_]?[a-z0-9])*[-_]?")


def normalize_index_name(name: str | None) -> str:
    """Return the stored form of an index name: trimmed, lowercase, "default" when empty.

    Raises InvalidRequestError when the name has other characters or is too long.
    """
    cleaned = (name or "").strip().lower()
    if not cleaned:
        return DEFAULT_INDEX

    if len(cleaned) > MAX_INDEX_NAME_LENGTH:
        raise InvalidRequestError(
            f"index name {name!r} is invalid: it has {len(cleaned)} characters, "
            f"the maximum is {MAX_INDEX_NAME_LENGTH}"
        )
    if not _INDEX_NAME.fullmatch(cleaned):
        raise InvalidRequestError(
            f"index name {name!r} is invalid: use lowercase letters, digits, '-' and '_', "
            "starting with a letter or digit, with no two '-' or '_' in a row"
        )
    return cleaned

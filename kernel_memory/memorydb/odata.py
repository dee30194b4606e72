"""OData filters for Azure AI Search: tag filters as `tags/any(...)` expressions, every value quoted.

Tags are stored as "key:value" strings in one filterable collection field, as in
Kernel Memory. One filter becomes the AND of one `any` clause per pair; a list of
filters becomes the OR of those groups. A value reaches the service only inside an
OData string literal with its single quotes doubled, so `Q1'24` or a value shaped
like OData syntax is compared as plain text (OData 4.01 ABNF, rule `SQUOTE-in-string`).
"""

from __future__ import annotations

from collections.abc import Sequence

from kernel_memory.errors import InvalidRequestError

TAGS_FIELD = "tags"

# Separates key and value inside one stored tag string.
TAG_SEPARATOR = ":"


def quote_literal(value: str) -> str:
    """Return `value` as an OData string literal: in single quotes, with each quote doubled."""
    return "'" + value.replace("'", "''") + "'"


def tag_string(key: str, value: str | None) -> str:
    """Return the stored form of one tag; a tag without a value is its bare key.

    Raises InvalidRequestError for a key containing ':', which would make "a:b" + "c"
    and "a" + "b:c" the same stored string.
    """
    if TAG_SEPARATOR in key:
        raise InvalidRequestError(
            f"tag key {key!r} is invalid for Azure AI Search: remove the ':', which separates key and value"
        )
    if value is None:
        return key
    return f"{key}{TAG_SEPARATOR}{value}"


def parse_tag_string(tag: str) -> tuple[str, str | None]:
    """Split a stored tag into key and value; the inverse of `tag_string`."""
    key, separator, value = tag.partition(TAG_SEPARATOR)
    return key, (value if separator else None)


def tag_filter(filters: Sequence[Sequence[tuple[str, str]]] | None) -> str | None:
    """Return the OData filter for normalised filters (lists of (key, value) pairs), None for no filter."""
    if not filters:
        return None
    groups = []
    for pairs in filters:
        clauses = [
            f"{TAGS_FIELD}/any(s: s eq {quote_literal(tag_string(key, value))})" for key, value in pairs
        ]
        groups.append("(" + " and ".join(clauses) + ")")
    return " or ".join(groups)

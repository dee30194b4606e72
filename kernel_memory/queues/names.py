"""Queue names for pipeline steps, within Azure Storage's naming rules.

Azure queue names are 3 to 63 characters of lowercase letters, digits and
dashes, start and end with a letter or digit, and have no two dashes in a row.
The poison queue of `q` is `q-poison`, so a step queue name may use at most 56
characters to leave room for the suffix.
"""

from __future__ import annotations

import re

from kernel_memory.errors import InvalidRequestError

POISON_SUFFIX = "-poison"
MAX_QUEUE_NAME_LENGTH = 63
MAX_STEP_QUEUE_NAME_LENGTH = MAX_QUEUE_NAME_LENGTH - len(POISON_SUFFIX)

_QUEUE_NAME_PATTERN = re.compile(r"[a-z0-9](?:[a-z0-9]|-(?!-))*[a-z0-9]")


def validate_queue_name(name: str) -> str:
    """Return `name` unchanged, or raise `InvalidRequestError` saying which Azure rule it breaks."""
    if not 3 <= len(name) <= MAX_QUEUE_NAME_LENGTH:
        raise InvalidRequestError(
            f"queue name {name!r} is invalid: it has {len(name)} characters, Azure allows 3 to {MAX_QUEUE_NAME_LENGTH}"
        )
    if not _QUEUE_NAME_PATTERN.fullmatch(name):
        raise InvalidRequestError(
            f"queue name {name!r} is invalid: use lowercase letters, digits and single dashes,"
            " starting and ending with a letter or digit"
        )
    return name


def queue_name_for(step: str, prefix: str) -> str:
    """Return the queue of a pipeline step, `{prefix}-{step}` with `_` turned into `-` and lowercased.

    For example `queue_name_for("gen_embeddings", "km")` is `km-gen-embeddings`.
    Raises `InvalidRequestError` when the result, or its poison queue name, breaks Azure's rules.
    """
    name = f"{prefix}-{step}".replace("_", "-").lower()
    validate_queue_name(name)
    if len(name) > MAX_STEP_QUEUE_NAME_LENGTH:
        raise InvalidRequestError(
            f"queue name {name!r} is too long: with {POISON_SUFFIX!r} appended it would exceed"
            f" {MAX_QUEUE_NAME_LENGTH} characters; shorten KM_QUEUE__PREFIX"
        )
    return name


def poison_queue_name(queue_name: str) -> str:
    """Return `{queue_name}-poison`, the queue the Functions host moves failed messages to."""
    return validate_queue_name(queue_name + POISON_SUFFIX)

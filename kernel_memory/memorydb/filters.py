"""Tag filters: normalisation, and finding the records that match them in SQL or with numpy.

A filter is a tag collection. A record matches one filter when it has every
(key, value) pair of it (AND), and matches a list of filters when it matches
any of them (OR). A key with an empty value list adds no condition, so an
empty filter, an empty list or None matches every record.

The filters reach SQLite as bound parameters, never as SQL text, so quotes,
commas and colons in keys and values (`period:Q1'24`, `Team's Menu.pdf`) are
compared as plain strings. In SQL they travel as one JSON parameter, so no
count of filters or pairs hits SQLite's limits on bound variables.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Sequence
from functools import reduce

import numpy as np
import numpy.typing as npt

from kernel_memory.errors import InvalidRequestError
from kernel_memory.models import MemoryFilter

IdArray = npt.NDArray[np.int64]

# One filter as the (key, value) pairs a record must all have, sorted and without duplicates.
FilterPairs = tuple[tuple[str, str], ...]

# Row ids of the records of index :index_name that match the filters in the JSON parameter :filters,
# a list of filters, each a list of [key, value] pairs. The tags table contains each (record, key, value)
# once, so a record matches a filter when the count of its matching pairs equals the filter's
# pair count. CROSS JOIN keeps the small filter list as the outer loop, so every pair is one
# lookup in the (index_name, key, value) index.
MATCHING_ROW_IDS_SQL = """
SELECT DISTINCT matched.record_row_id FROM (
    SELECT tag.record_row_id AS record_row_id
    FROM (
        SELECT filter.key AS filter_number,
               json_extract(pair.value, '$[0]') AS key,
               json_extract(pair.value, '$[1]') AS value,
               json_array_length(filter.value) AS pair_count
        FROM json_each(:filters) AS filter, json_each(filter.value) AS pair
    ) AS wanted
    CROSS JOIN tags AS tag
        ON tag.index_name = :index_name AND tag.key = wanted.key AND tag.value = wanted.value
    GROUP BY wanted.filter_number, tag.record_row_id
    HAVING COUNT(*) = MAX(wanted.pair_count)
) AS matched
"""


class TagRowIdCache:
    """Row ids of the records having each (key, value) tag, kept for repeated filters.

    Vector search needs the matching row ids as a numpy array. Reading them per
    pair from the (index_name, key, value) index and combining the sorted arrays
    with numpy took a third of the time of MATCHING_ROW_IDS_SQL for 10,000
    matching records of 100,000. The arrays are kept until the next write to the
    index changes its generation, so a filter used again costs no SQL at all.
    """

    def __init__(self, *, max_row_ids: int = 4_000_000) -> None:
        # Bound on the row ids kept in all arrays together (8 bytes each); least recently used go first.
        self._max_row_ids = max_row_ids
        self._arrays: OrderedDict[tuple[str, str, str], tuple[int, IdArray]] = OrderedDict()
        self._row_id_count = 0
        self._lock = threading.Lock()

    def matching_row_ids(
        self,
        connection: sqlite3.Connection,
        index: str,
        filters: list[FilterPairs],
        *,
        generation: int,
    ) -> IdArray:
        """Return the sorted row ids of the records of `index` matching any of the filters.

        `generation` must be the index's generation in the transaction `connection` is reading in.
        """
        matches = []
        for pairs in filters:
            arrays = sorted(
                (self._pair_row_ids(connection, index, key, value, generation) for key, value in pairs),
                key=len,
            )
            matches.append(reduce(lambda a, b: np.intersect1d(a, b, assume_unique=True), arrays))
        if len(matches) == 1:
            return matches[0]
        return np.unique(np.concatenate(matches))

    def forget(self, index: str) -> None:
        with self._lock:
            for key in [key for key in self._arrays if key[0] == index]:
                self._row_id_count -= len(self._arrays.pop(key)[1])

    def _pair_row_ids(
        self, connection: sqlite3.Connection, index: str, key: str, value: str, generation: int
    ) -> IdArray:
        cache_key = (index, key, value)
        with self._lock:
            cached = self._arrays.get(cache_key)
            if cached is not None and cached[0] == generation:
                self._arrays.move_to_end(cache_key)
                return cached[1]

        rows = connection.execute(
            "SELECT record_row_id FROM tags WHERE index_name = ? AND key = ? AND value = ? "
            "ORDER BY record_row_id",
            (index, key, value),
        ).fetchall()
        row_ids = np.fromiter((row_id for (row_id,) in rows), dtype=np.int64, count=len(rows))

        with self._lock:
            previous = self._arrays.pop(cache_key, None)
            if previous is not None:
                self._row_id_count -= len(previous[1])
            self._arrays[cache_key] = (generation, row_ids)
            self._row_id_count += len(row_ids)
            while self._row_id_count > self._max_row_ids and len(self._arrays) > 1:
                self._row_id_count -= len(self._arrays.popitem(last=False)[1][1])
        return row_ids


def normalize_filters(filters: Sequence[MemoryFilter] | None) -> list[FilterPairs] | None:
    """Return each filter as its sorted, distinct pairs, or None when the filters match everything.

    Raises InvalidRequestError when a key or value is not a string.
    """
    if not filters:
        return None

    normalized: list[FilterPairs] = []
    for memory_filter in filters:
        pairs = _filter_pairs(memory_filter)
        if not pairs:
            # One filter without conditions matches every record, so the whole OR does.
            return None
        if pairs not in normalized:
            normalized.append(pairs)
    return normalized


def delete_filters(memory_filter: MemoryFilter) -> list[FilterPairs]:
    """Normalise the filter of a delete, rejecting one without conditions, which would delete a whole index."""
    filters = normalize_filters([memory_filter])
    if filters is None:
        raise InvalidRequestError(
            f"filter {memory_filter!r} has no conditions and would delete every record: "
            "use delete_index to remove a whole index"
        )
    return filters


def filters_parameter(filters: list[FilterPairs]) -> str:
    """Encode normalised filters as the JSON parameter of MATCHING_ROW_IDS_SQL."""
    return json.dumps([[list(pair) for pair in pairs] for pairs in filters], ensure_ascii=False)


def tag_rows(tags: dict[str, list[str]]) -> list[tuple[str, str]]:
    """Return the distinct (key, value) pairs of a record's tags, the rows a filter looks up."""
    rows: set[tuple[str, str]] = set()
    for key, values in tags.items():
        for value in values:
            # Kernel Memory allows a tag without a value; it is stored but no filter can match it.
            if value is not None:
                rows.add(_checked_pair(key, value))
    return sorted(rows)


def _filter_pairs(memory_filter: MemoryFilter) -> FilterPairs:
    if not isinstance(memory_filter, dict):
        raise InvalidRequestError(
            f"filter {memory_filter!r} is invalid: a filter maps tag keys to lists of values"
        )
    pairs: set[tuple[str, str]] = set()
    for key, values in memory_filter.items():
        if isinstance(values, str):
            # A bare string is one value, not a list of its characters.
            values = [values]
        for value in values or ():
            if value is not None:
                pairs.add(_checked_pair(key, value))
    return tuple(sorted(pairs))


def _checked_pair(key: object, value: object) -> tuple[str, str]:
    if not isinstance(key, str) or not isinstance(value, str):
        raise InvalidRequestError(f"tag {key!r}: {value!r} is invalid: tag keys and values must be strings")
    return key, value

"""Records of the SQLite memory DB: their stored form, and writing and deleting them with their tags.

The functions that take a connection run inside a transaction that the caller opened.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np

from kernel_memory.errors import InvalidRequestError
from kernel_memory.memorydb.filters import tag_rows
from kernel_memory.memorydb.text_search import index_text
from kernel_memory.memorydb.vectors import FloatArray
from kernel_memory.models import PAYLOAD_TEXT, MemoryRecord

RECORD_COLUMNS = "row_id, id, text, payload, tags, vector"


@dataclass(frozen=True, slots=True)
class EncodedRecord:
    """A memory record in the form its columns store, checked before any SQL runs."""

    id: str
    text: str | None
    payload_json: str
    tags_json: str
    tag_rows: list[tuple[str, str]]
    vector: FloatArray | None
    vector_blob: bytes | None
    vector_norm: float | None


def next_write_number(connection: sqlite3.Connection) -> int:
    """Increment and return the database-wide write counter, which never goes back."""
    connection.execute("UPDATE meta SET value = value + 1 WHERE key = 'write_counter'")
    return connection.execute("SELECT value FROM meta WHERE key = 'write_counter'").fetchone()[0]


def bump_generation(connection: sqlite3.Connection, index: str) -> int:
    generation = next_write_number(connection)
    connection.execute("UPDATE indexes SET generation = ? WHERE name = ?", (generation, index))
    return generation


def index_generation(connection: sqlite3.Connection, index: str) -> int | None:
    row = connection.execute("SELECT generation FROM indexes WHERE name = ?", (index,)).fetchone()
    return None if row is None else row[0]


def write_record(connection: sqlite3.Connection, index: str, record: EncodedRecord) -> int:
    """Insert or replace one record with its tags and full-text row; return its row id."""
    existing = connection.execute(
        "SELECT row_id, text FROM records WHERE index_name = ? AND id = ?", (index, record.id)
    ).fetchone()
    values = (record.text, record.payload_json, record.tags_json, record.vector_blob, record.vector_norm)

    if existing is None:
        cursor = connection.execute(
            "INSERT INTO records (index_name, id, text, payload, tags, vector, vector_norm) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (index, record.id, *values),
        )
        row_id = cursor.lastrowid
        assert row_id is not None
    else:
        row_id, old_text = existing
        delete_full_text(connection, [(row_id, old_text)])
        connection.execute("DELETE FROM tags WHERE record_row_id = ?", (row_id,))
        connection.execute(
            "UPDATE records SET text = ?, payload = ?, tags = ?, vector = ?, vector_norm = ? WHERE row_id = ?",
            (*values, row_id),
        )

    connection.executemany(
        "INSERT INTO tags (record_row_id, index_name, key, value) VALUES (?, ?, ?, ?)",
        [(row_id, index, key, value) for key, value in record.tag_rows],
    )
    if record.text is not None:
        connection.execute(
            "INSERT INTO records_fts (rowid, body) VALUES (?, ?)", (row_id, index_text(record.text))
        )
        connection.execute("UPDATE meta SET value = value + 1 WHERE key = 'fts_rows'")
    return row_id


def delete_rows(connection: sqlite3.Connection, rows: list[tuple[int, str | None]]) -> None:
    """Delete records, given as (row id, text), with their tags and full-text rows."""
    delete_full_text(connection, rows)
    row_ids = json.dumps([row_id for row_id, _ in rows])
    connection.execute("DELETE FROM tags WHERE record_row_id IN (SELECT value FROM json_each(?))", (row_ids,))
    connection.execute("DELETE FROM records WHERE row_id IN (SELECT value FROM json_each(?))", (row_ids,))


def delete_full_text(connection: sqlite3.Connection, rows: list[tuple[int, str | None]]) -> None:
    # A contentless FTS5 table removes a row only when given the exact text it indexed.
    indexed = [(row_id, index_text(text)) for row_id, text in rows if text is not None]
    connection.executemany(
        "INSERT INTO records_fts (records_fts, rowid, body) VALUES ('delete', ?, ?)", indexed
    )
    connection.execute("UPDATE meta SET value = value - ? WHERE key = 'fts_rows'", (len(indexed),))


def fetch_records(connection: sqlite3.Connection, row_ids: list[int]) -> dict[int, MemoryRecord]:
    if not row_ids:
        return {}
    rows = connection.execute(
        f"SELECT {RECORD_COLUMNS} FROM records WHERE row_id IN (SELECT value FROM json_each(?))",
        (json.dumps(row_ids),),
    ).fetchall()
    return {row[0]: decode_record(row) for row in rows}


def encode_record(record: MemoryRecord, *, index: str) -> EncodedRecord:
    if not isinstance(record.id, str) or not record.id:
        raise InvalidRequestError(
            f"record id {record.id!r} in index {index!r} is invalid: use a non-empty string"
        )

    payload = dict(record.payload)
    text = payload.get(PAYLOAD_TEXT)
    if isinstance(text, str):
        del payload[PAYLOAD_TEXT]
    else:
        text = None

    try:
        payload_json = json.dumps(payload, ensure_ascii=False, default=json_value)
        tags_json = json.dumps(record.tags, ensure_ascii=False)
    except (TypeError, ValueError) as error:
        raise InvalidRequestError(
            f"record {record.id!r} in index {index!r} cannot be stored: {error}; "
            "payload and tags must be JSON values"
        ) from error

    vector = None
    blob = None
    norm = None
    if record.vector is not None:
        vector = np.asarray(record.vector, dtype=np.float32)
        if vector.ndim != 1 or not np.isfinite(vector).all():
            raise InvalidRequestError(
                f"vector of record {record.id!r} in index {index!r} is invalid: "
                "use a flat list of finite numbers"
            )
        blob = vector.astype("<f4").tobytes()
        norm = float(np.linalg.norm(vector))

    return EncodedRecord(
        id=record.id,
        text=text,
        payload_json=payload_json,
        tags_json=tags_json,
        tag_rows=tag_rows(record.tags),
        vector=vector,
        vector_blob=blob,
        vector_norm=norm,
    )


def check_vector_sizes(records: list[EncodedRecord], *, index: str, vector_size: int) -> None:
    for record in records:
        if record.vector is not None and len(record.vector) != vector_size:
            raise InvalidRequestError(
                f"vector of record {record.id!r} has {len(record.vector)} dimensions, "
                f"but index {index!r} stores {vector_size}: use the embedding model the index was "
                "created with, or another index"
            )


def decode_record(row: tuple[Any, ...]) -> MemoryRecord:
    _, record_id, text, payload_json, tags_json, blob = row
    payload = json.loads(payload_json)
    if text is not None:
        payload = {PAYLOAD_TEXT: text, **payload}
    vector = None if blob is None else np.frombuffer(blob, dtype="<f4").tolist()
    return MemoryRecord(id=record_id, vector=vector, tags=json.loads(tags_json), payload=payload)


def json_value(value: object) -> str:
    """Store dates as ISO 8601 strings; reject any other value JSON cannot hold."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} {value!r} is not JSON serializable")

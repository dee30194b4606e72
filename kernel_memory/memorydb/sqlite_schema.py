"""Tables of the SQLite memory DB, created and checked when a database file is opened.

    meta     (key, value)                     write counter; full-text row count; indexed text version
    indexes  (name, vector_size, generation)  generation: the write counter at the last change
    records  (row_id, index_name, id, text, payload, tags, vector, vector_norm)
    tags     (record_row_id, key, value, index_name)   one row per distinct tag, for filters
    records_fts (body)                        FTS5 over text_search.index_text(records.text)

`records.payload` is the payload JSON without its "text", which lives in
`records.text` so it is stored once. Vectors are little-endian float32 blobs.
`records_fts` is contentless (it keeps only the index, not a copy of the text),
so removing a row from it needs the text it was indexed with; that is why a
change of `index_text` rebuilds it.
"""

from __future__ import annotations

import logging
import sqlite3

from kernel_memory.errors import PermanentError
from kernel_memory.memorydb.text_search import INDEX_TEXT_VERSION, index_text

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1

_TABLES = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS indexes (
    name TEXT PRIMARY KEY,
    vector_size INTEGER NOT NULL,
    generation INTEGER NOT NULL
) WITHOUT ROWID;

-- AUTOINCREMENT: row ids never come back after a delete, so the in-memory vector
-- matrices, kept in row id order, only ever append new records.
CREATE TABLE IF NOT EXISTS records (
    row_id INTEGER PRIMARY KEY AUTOINCREMENT,
    index_name TEXT NOT NULL,
    id TEXT NOT NULL,
    text TEXT,
    payload TEXT NOT NULL,
    tags TEXT NOT NULL,
    vector BLOB,
    vector_norm REAL,
    UNIQUE (index_name, id)
);

-- The primary key columns come first: SQLite 3.40's PRAGMA integrity_check wrongly reports
-- NULLs in a NOT NULL column declared before them in a WITHOUT ROWID table.
CREATE TABLE IF NOT EXISTS tags (
    record_row_id INTEGER NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    index_name TEXT NOT NULL,
    PRIMARY KEY (record_row_id, key, value)
) WITHOUT ROWID;

CREATE INDEX IF NOT EXISTS tags_by_value ON tags (index_name, key, value, record_row_id);

CREATE VIRTUAL TABLE IF NOT EXISTS records_fts USING fts5(
    body,
    content = '',
    tokenize = 'unicode61 remove_diacritics 2'
);
"""


def ensure_schema(connection: sqlite3.Connection, *, path: str) -> None:
    """Create missing tables, reject files of a newer schema and rebuild a stale full-text index.

    Runs in one write transaction, so two processes opening a new file at once cannot race.
    """
    connection.execute("BEGIN IMMEDIATE")
    try:
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise PermanentError(
                f"memory DB {path} has schema version {version}, newer than {SCHEMA_VERSION} "
                "that this version reads: upgrade kernel-memory-functions or use another file"
            )

        # executescript() would commit first, so the statements run one by one in this transaction.
        for statement in _statements(_TABLES):
            connection.execute(statement)
        connection.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('write_counter', 0), ('index_text_version', ?), "
            "('fts_rows', (SELECT COUNT(*) FROM records WHERE text IS NOT NULL))",
            (INDEX_TEXT_VERSION,),
        )
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

        stored_text_version = connection.execute(
            "SELECT value FROM meta WHERE key = 'index_text_version'"
        ).fetchone()[0]
        if stored_text_version != INDEX_TEXT_VERSION:
            _rebuild_full_text_index(connection, path=path, old_version=stored_text_version)

        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise


def _rebuild_full_text_index(connection: sqlite3.Connection, *, path: str, old_version: int) -> None:
    logger.info(
        "rebuilding the full-text index of memory DB %s: indexed text version %s, this version uses %s",
        path,
        old_version,
        INDEX_TEXT_VERSION,
    )
    connection.execute("INSERT INTO records_fts (records_fts) VALUES ('delete-all')")
    rows = connection.execute("SELECT row_id, text FROM records WHERE text IS NOT NULL").fetchall()
    connection.executemany(
        "INSERT INTO records_fts (rowid, body) VALUES (?, ?)",
        ((row_id, index_text(text)) for row_id, text in rows),
    )
    connection.execute("UPDATE meta SET value = ? WHERE key = 'index_text_version'", (INDEX_TEXT_VERSION,))
    connection.execute("UPDATE meta SET value = ? WHERE key = 'fts_rows'", (len(rows),))


def _statements(script: str) -> list[str]:
    """Split a script of DDL statements, which contain no semicolons inside them, at its semicolons."""
    without_comments = "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("--"))
    return [statement.strip() for statement in without_comments.split(";") if statement.strip()]

"""Behaviour every `DocumentStorage` adapter must show, written once.

A test module subclasses `DocumentStorageContract` and provides a `storage`
fixture that yields a fresh, empty adapter; pytest then runs every test below
against that adapter.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator

import pytest

from kernel_memory.errors import ConcurrencyError, InvalidRequestError, NotFoundError
from kernel_memory.storage.base import DocumentStorage

INDEX = "idx"
DOC = "doc-1"

# Ids that Kernel Memory's character set rejects, most of them path traversal attempts.
INVALID_IDS = [
    "",
    ".",
    "..",
    "../x",
    "a/../../b",
    "/etc",
    "a/b",
    "a\\b",
    "C:",
    "a\x00b",
    "a b",
    "ü",
    "x" * 256,
]

# File names that are rejected outright.
INVALID_FILE_NAMES = [
    "",
    ".",
    "..",
    "a/..",
    "dir/",
    "a\x00b.txt",
    "line\nbreak.txt",
    "x" * 252 + ".txt",
    "é" * 128 + ".txt",
    "__pipeline_status.json",
]

# File names from which only the last path component is kept.
STRIPPED_FILE_NAMES = [
    ("../x.txt", "x.txt"),
    ("a/../../b.txt", "b.txt"),
    ("/etc/passwd", "passwd"),
    ("C:\\Users\\me\\report.pdf", "report.pdf"),
    ("..\\..\\win.ini", "win.ini"),
]


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def _collect(stream: AsyncIterator[bytes]) -> bytes:
    return b"".join([block async for block in stream])


class DocumentStorageContract:
    # ------------------------------------------------------------ files

    async def test_write_read_round_trip(self, storage: DocumentStorage) -> None:
        await storage.write_file(INDEX, DOC, "a.txt", b"hello")
        assert await storage.read_file(INDEX, DOC, "a.txt") == b"hello"

    async def test_write_replaces_file(self, storage: DocumentStorage) -> None:
        await storage.write_file(INDEX, DOC, "a.txt", b"first version, longer")
        await storage.write_file(INDEX, DOC, "a.txt", b"second")
        assert await storage.read_file(INDEX, DOC, "a.txt") == b"second"

    async def test_binary_bytes_unchanged(self, storage: DocumentStorage) -> None:
        data = bytes(range(256)) * 4 + b"\r\n\x00\xff"
        await storage.write_file(INDEX, DOC, "blob.bin", data)
        assert await storage.read_file(INDEX, DOC, "blob.bin") == data

    async def test_empty_file_round_trip(self, storage: DocumentStorage) -> None:
        await storage.write_file(INDEX, DOC, "empty.txt", b"")
        assert await storage.read_file(INDEX, DOC, "empty.txt") == b""

    @pytest.mark.parametrize("name", ["Team's Menu.pdf", "日本語 ファイル.txt", "a,b;c=d (1).md", "...txt"])
    async def test_unusual_file_name_round_trip(self, storage: DocumentStorage, name: str) -> None:
        await storage.write_file(INDEX, DOC, name, b"content")
        assert await storage.read_file(INDEX, DOC, name) == b"content"
        assert await storage.list_files(INDEX, DOC) == [name]

    async def test_read_missing_file_not_found(self, storage: DocumentStorage) -> None:
        await storage.write_file(INDEX, DOC, "a.txt", b"x")
        with pytest.raises(NotFoundError):
            await storage.read_file(INDEX, DOC, "b.txt")

    async def test_read_missing_document_not_found(self, storage: DocumentStorage) -> None:
        with pytest.raises(NotFoundError):
            await storage.read_file(INDEX, "never-written", "a.txt")

    # ------------------------------------------------------------ streams

    async def test_stream_file_joins_to_content(self, storage: DocumentStorage) -> None:
        data = bytes(range(256)) * 1000
        await storage.write_file(INDEX, DOC, "big.bin", data)
        assert await _collect(storage.stream_file(INDEX, DOC, "big.bin")) == data

    async def test_stream_missing_file_not_found(self, storage: DocumentStorage) -> None:
        with pytest.raises(NotFoundError):
            await _collect(storage.stream_file(INDEX, DOC, "absent.bin"))

    async def test_write_stream_returns_size(self, storage: DocumentStorage) -> None:
        size = await storage.write_stream(INDEX, DOC, "s.bin", _chunks(b"ab", b"", b"cde", b"f" * 100_000))
        assert size == 100_005

    async def test_write_stream_round_trip(self, storage: DocumentStorage) -> None:
        parts = [bytes([n]) * (7_000 + n) for n in range(200)]
        await storage.write_stream(INDEX, DOC, "s.bin", _chunks(*parts))
        assert await storage.read_file(INDEX, DOC, "s.bin") == b"".join(parts)

    async def test_write_stream_empty(self, storage: DocumentStorage) -> None:
        size = await storage.write_stream(INDEX, DOC, "s.bin", _chunks())
        assert size == 0
        assert await storage.read_file(INDEX, DOC, "s.bin") == b""

    async def test_write_stream_failure_keeps_previous(self, storage: DocumentStorage) -> None:
        async def failing() -> AsyncIterator[bytes]:
            yield b"partial " * 1000
            raise RuntimeError("client disconnected")

        await storage.write_file(INDEX, DOC, "s.bin", b"previous")
        with pytest.raises(RuntimeError, match="client disconnected"):
            await storage.write_stream(INDEX, DOC, "s.bin", failing())
        assert await storage.read_file(INDEX, DOC, "s.bin") == b"previous"
        assert await storage.list_files(INDEX, DOC) == ["s.bin"]

    # ------------------------------------------------------------ listing and deleting

    async def test_list_files_sorted_without_status(self, storage: DocumentStorage) -> None:
        for name in ["b.txt", "a.pdf", "a.pdf.extract.txt"]:
            await storage.write_file(INDEX, DOC, name, b"x")
        await storage.write_status(INDEX, DOC, b"{}", etag=None)
        assert await storage.list_files(INDEX, DOC) == ["a.pdf", "a.pdf.extract.txt", "b.txt"]

    async def test_list_files_missing_document_empty(self, storage: DocumentStorage) -> None:
        assert await storage.list_files(INDEX, "never-written") == []

    async def test_list_files_excludes_other_documents(self, storage: DocumentStorage) -> None:
        await storage.write_file(INDEX, "doc", "mine.txt", b"x")
        await storage.write_file(INDEX, "doc2", "other.txt", b"x")
        assert await storage.list_files(INDEX, "doc") == ["mine.txt"]

    async def test_delete_file(self, storage: DocumentStorage) -> None:
        await storage.write_file(INDEX, DOC, "a.txt", b"x")
        await storage.write_file(INDEX, DOC, "b.txt", b"x")
        await storage.delete_file(INDEX, DOC, "a.txt")
        assert await storage.list_files(INDEX, DOC) == ["b.txt"]

    async def test_delete_missing_file_no_error(self, storage: DocumentStorage) -> None:
        await storage.delete_file(INDEX, DOC, "absent.txt")
        assert await storage.list_files(INDEX, DOC) == []

    async def test_delete_document_removes_files_and_status(self, storage: DocumentStorage) -> None:
        await storage.write_file(INDEX, DOC, "a.txt", b"x")
        await storage.write_status(INDEX, DOC, b"{}", etag=None)
        await storage.delete_document(INDEX, DOC)
        assert await storage.list_files(INDEX, DOC) == []
        with pytest.raises(NotFoundError):
            await storage.read_status(INDEX, DOC)

    async def test_delete_document_keeps_prefix_sibling(self, storage: DocumentStorage) -> None:
        await storage.write_file(INDEX, "doc", "a.txt", b"x")
        await storage.write_file(INDEX, "doc2", "a.txt", b"kept")
        await storage.delete_document(INDEX, "doc")
        assert await storage.read_file(INDEX, "doc2", "a.txt") == b"kept"

    async def test_delete_absent_document_no_error(self, storage: DocumentStorage) -> None:
        await storage.delete_document(INDEX, "never-written")
        assert await storage.list_files(INDEX, "never-written") == []

    async def test_delete_index_removes_documents(self, storage: DocumentStorage) -> None:
        await storage.write_file(INDEX, "d1", "a.txt", b"x")
        await storage.write_file(INDEX, "d2", "b.txt", b"x")
        await storage.write_status(INDEX, "d2", b"{}", etag=None)
        await storage.delete_index(INDEX)
        assert await storage.list_files(INDEX, "d1") == []
        assert await storage.list_files(INDEX, "d2") == []
        with pytest.raises(NotFoundError):
            await storage.read_status(INDEX, "d2")

    async def test_delete_index_keeps_prefix_sibling(self, storage: DocumentStorage) -> None:
        await storage.write_file("idx", DOC, "a.txt", b"x")
        await storage.write_file("idx2", DOC, "a.txt", b"kept")
        await storage.delete_index("idx")
        assert await storage.read_file("idx2", DOC, "a.txt") == b"kept"

    async def test_delete_absent_index_no_error(self, storage: DocumentStorage) -> None:
        await storage.delete_index("never-written")
        assert await storage.list_files("never-written", DOC) == []

    # ------------------------------------------------------------ pipeline status

    async def test_status_missing_not_found(self, storage: DocumentStorage) -> None:
        with pytest.raises(NotFoundError):
            await storage.read_status(INDEX, DOC)

    async def test_status_round_trip_with_etag(self, storage: DocumentStorage) -> None:
        data = json.dumps({"index": INDEX, "document_id": DOC}).encode()
        etag = await storage.write_status(INDEX, DOC, data, etag=None)
        assert await storage.read_status(INDEX, DOC) == (data, etag)

    async def test_status_etag_changes_with_content(self, storage: DocumentStorage) -> None:
        first = await storage.write_status(INDEX, DOC, b'{"n": 1}', etag=None)
        second = await storage.write_status(INDEX, DOC, b'{"n": 2}', etag=first)
        assert second != first

    async def test_status_stale_etag_conflict(self, storage: DocumentStorage) -> None:
        stale = await storage.write_status(INDEX, DOC, b'{"n": 1}', etag=None)
        await storage.write_status(INDEX, DOC, b'{"n": 2}', etag=stale)
        with pytest.raises(ConcurrencyError):
            await storage.write_status(INDEX, DOC, b'{"n": 3}', etag=stale)

    async def test_status_conflict_keeps_winner(self, storage: DocumentStorage) -> None:
        stale = await storage.write_status(INDEX, DOC, b'{"n": 1}', etag=None)
        await storage.write_status(INDEX, DOC, b'{"winner": true}', etag=stale)
        with pytest.raises(ConcurrencyError):
            await storage.write_status(INDEX, DOC, b'{"loser": true}', etag=stale)
        data, _ = await storage.read_status(INDEX, DOC)
        assert data == b'{"winner": true}'

    async def test_status_etag_none_overwrites(self, storage: DocumentStorage) -> None:
        await storage.write_status(INDEX, DOC, b'{"n": 1}', etag=None)
        await storage.write_status(INDEX, DOC, b'{"n": 2}', etag=None)
        data, _ = await storage.read_status(INDEX, DOC)
        assert data == b'{"n": 2}'

    async def test_status_etag_after_delete_conflict(self, storage: DocumentStorage) -> None:
        etag = await storage.write_status(INDEX, DOC, b'{"n": 1}', etag=None)
        await storage.delete_document(INDEX, DOC)
        with pytest.raises(ConcurrencyError):
            await storage.write_status(INDEX, DOC, b'{"n": 2}', etag=etag)

    async def test_status_unknown_etag_on_missing_conflict(self, storage: DocumentStorage) -> None:
        with pytest.raises(ConcurrencyError):
            await storage.write_status(INDEX, DOC, b"{}", etag='"not-a-real-etag"')

    # ------------------------------------------------------------ validation

    @pytest.mark.parametrize("bad", INVALID_IDS)
    async def test_invalid_document_id_rejected(self, storage: DocumentStorage, bad: str) -> None:
        with pytest.raises(InvalidRequestError):
            await storage.write_file(INDEX, bad, "a.txt", b"x")

    @pytest.mark.parametrize("bad", INVALID_IDS)
    async def test_invalid_index_rejected(self, storage: DocumentStorage, bad: str) -> None:
        with pytest.raises(InvalidRequestError):
            await storage.read_status(bad, DOC)

    @pytest.mark.parametrize("bad", ["..", "../x", "a/b"])
    async def test_invalid_id_rejected_by_delete(self, storage: DocumentStorage, bad: str) -> None:
        await storage.write_file(INDEX, DOC, "a.txt", b"kept")
        with pytest.raises(InvalidRequestError):
            await storage.delete_document(INDEX, bad)
        with pytest.raises(InvalidRequestError):
            await storage.delete_index(bad)
        assert await storage.read_file(INDEX, DOC, "a.txt") == b"kept"

    async def test_invalid_id_message_names_value(self, storage: DocumentStorage) -> None:
        with pytest.raises(InvalidRequestError, match=r"'\.\./x'.*letters"):
            await storage.write_file(INDEX, "../x", "a.txt", b"x")

    @pytest.mark.parametrize("bad", INVALID_FILE_NAMES)
    async def test_invalid_file_name_rejected(self, storage: DocumentStorage, bad: str) -> None:
        with pytest.raises(InvalidRequestError):
            await storage.write_file(INDEX, DOC, bad, b"x")

    @pytest.mark.parametrize("bad", ["..", "a\x00b", "__pipeline_status.json"])
    async def test_invalid_file_name_rejected_by_stream(self, storage: DocumentStorage, bad: str) -> None:
        with pytest.raises(InvalidRequestError):
            await storage.write_stream(INDEX, DOC, bad, _chunks(b"x"))
        with pytest.raises(InvalidRequestError):
            await _collect(storage.stream_file(INDEX, DOC, bad))

    @pytest.mark.parametrize(("given", "stored"), STRIPPED_FILE_NAMES)
    async def test_file_name_folders_dropped(self, storage: DocumentStorage, given: str, stored: str) -> None:
        await storage.write_file(INDEX, DOC, given, b"x")
        assert await storage.list_files(INDEX, DOC) == [stored]

    async def test_stripped_name_reads_same_file(self, storage: DocumentStorage) -> None:
        await storage.write_file(INDEX, DOC, "../../secret.txt", b"x")
        assert await storage.read_file(INDEX, DOC, "secret.txt") == b"x"

    async def test_large_stream_sha256(self, storage: DocumentStorage) -> None:
        block = hashlib.sha256(b"seed").digest() * 2048
        parts = [block] * 40
        expected = hashlib.sha256(b"".join(parts)).hexdigest()
        await storage.write_stream(INDEX, DOC, "large.bin", _chunks(*parts))
        streamed = await _collect(storage.stream_file(INDEX, DOC, "large.bin"))
        assert hashlib.sha256(streamed).hexdigest() == expected

"""Document storage in a local folder: `{root}/{index}/{documentId}/{file}`.

Writes go to a temporary file in the same folder and are moved into place with
`os.replace`, so a reader sees the old file or the new one, never a partial one.
Status writes take an exclusive lock on `__pipeline_status.json.lock`, so the
ETag compare-and-swap holds across threads and processes that share the folder.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import shutil
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Self

from kernel_memory.errors import ConcurrencyError, NotFoundError, PermanentError
from kernel_memory.models import STATUS_FILE_NAME
from kernel_memory.storage.paths import (
    STATUS_LOCK_FILE_NAME,
    TEMP_FILE_PREFIX,
    is_internal_file,
    sanitize_file_name,
    validate_document_id,
    validate_index,
)

logger = logging.getLogger(__name__)

DEFAULT_BLOCK_SIZE = 64 * 1024
# Chunks of a streamed upload are gathered up to this size before one write in a worker thread.
_WRITE_BUFFER_SIZE = 1024 * 1024


class LocalDocumentStorage:
    """`DocumentStorage` on a local folder, for the serverless mode and tests."""

    def __init__(self, root: Path, *, block_size: int = DEFAULT_BLOCK_SIZE) -> None:
        self.root = Path(root).resolve()
        self.block_size = block_size

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Release resources; the local adapter holds none between calls."""

    # ------------------------------------------------------------ paths

    def _checked(self, path: Path) -> Path:
        # The validators already exclude separators and `..`, so this only guards against
        # a symbolic link inside the root that points elsewhere.
        resolved = path.resolve()
        if not resolved.is_relative_to(self.root):
            raise PermanentError(
                f"storage path {resolved} is outside the storage root {self.root};"
                " remove the symbolic link that leads there"
            )
        return path

    def _index_dir(self, index: str) -> Path:
        return self._checked(self.root / validate_index(index))

    def _document_dir(self, index: str, document_id: str) -> Path:
        return self._checked(self.root / validate_index(index) / validate_document_id(document_id))

    def _file_path(self, index: str, document_id: str, file_name: str) -> Path:
        return self._checked(self._document_dir(index, document_id) / sanitize_file_name(file_name))

    # ------------------------------------------------------------ files

    async def write_file(self, index: str, document_id: str, file_name: str, data: bytes) -> None:
        path = self._file_path(index, document_id, file_name)
        await asyncio.to_thread(_write_atomic, path, bytes(data))
        logger.debug("wrote %s/%s/%s (%d bytes)", index, document_id, path.name, len(data))

    async def write_stream(
        self, index: str, document_id: str, file_name: str, chunks: AsyncIterator[bytes]
    ) -> int:
        path = self._file_path(index, document_id, file_name)
        await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
        temp_path, handle = await asyncio.to_thread(_open_temp, path)
        size = 0
        try:
            buffer = bytearray()
            async for chunk in chunks:
                buffer += chunk
                size += len(chunk)
                if len(buffer) >= _WRITE_BUFFER_SIZE:
                    await asyncio.to_thread(handle.write, bytes(buffer))
                    buffer.clear()
            await asyncio.to_thread(_finish_temp, handle, bytes(buffer), temp_path, path)
        except BaseException:
            # The previous version of the file, if any, stays in place.
            await asyncio.to_thread(_discard_temp, handle, temp_path)
            raise

        logger.debug("wrote %s/%s/%s (%d bytes, streamed)", index, document_id, path.name, size)
        return size

    async def read_file(self, index: str, document_id: str, file_name: str) -> bytes:
        path = self._file_path(index, document_id, file_name)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except (FileNotFoundError, NotADirectoryError):
            raise _file_not_found(index, document_id, path.name) from None

    def stream_file(self, index: str, document_id: str, file_name: str) -> AsyncIterator[bytes]:
        # Validation and the existence check run now, so an HTTP download can return
        # 404 before it starts the response.
        path = self._file_path(index, document_id, file_name)
        if not path.is_file():
            raise _file_not_found(index, document_id, path.name)
        return self._read_blocks(index, document_id, path)

    async def _read_blocks(self, index: str, document_id: str, path: Path) -> AsyncIterator[bytes]:
        try:
            handle = await asyncio.to_thread(path.open, "rb")
        except FileNotFoundError:
            raise _file_not_found(index, document_id, path.name) from None

        try:
            while block := await asyncio.to_thread(handle.read, self.block_size):
                yield block
        finally:
            handle.close()

    async def list_files(self, index: str, document_id: str) -> list[str]:
        folder = self._document_dir(index, document_id)
        return await asyncio.to_thread(_list_user_files, folder)

    async def delete_file(self, index: str, document_id: str, file_name: str) -> None:
        path = self._file_path(index, document_id, file_name)
        await asyncio.to_thread(path.unlink, missing_ok=True)

    async def delete_document(self, index: str, document_id: str) -> None:
        folder = self._document_dir(index, document_id)
        await asyncio.to_thread(_remove_tree, folder)
        logger.info("deleted the files of document %s/%s", index, document_id)

    async def delete_index(self, index: str) -> None:
        folder = self._index_dir(index)
        await asyncio.to_thread(_remove_tree, folder)
        logger.info("deleted the files of index %s", index)

    # ------------------------------------------------------------ pipeline status

    async def read_status(self, index: str, document_id: str) -> tuple[bytes, str]:
        path = self._document_dir(index, document_id) / STATUS_FILE_NAME
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except (FileNotFoundError, NotADirectoryError):
            raise NotFoundError(
                f"document {index}/{document_id} has no pipeline status: it was never uploaded or was deleted"
            ) from None
        return data, _etag_of(data)

    async def write_status(self, index: str, document_id: str, data: bytes, *, etag: str | None) -> str:
        folder = self._document_dir(index, document_id)
        new_etag = await asyncio.to_thread(_write_status_locked, folder, bytes(data), etag)
        logger.debug("saved the status of %s/%s, etag %s", index, document_id, new_etag)
        return new_etag


# ---------------------------------------------------------------- blocking helpers, run in worker threads


def _file_not_found(index: str, document_id: str, name: str) -> NotFoundError:
    return NotFoundError(f"file {name!r} of document {index}/{document_id} does not exist")


def _etag_of(data: bytes) -> str:
    # A content hash, so equal content gives an equal ETag on every machine
    # and no file system timestamp granularity is involved.
    return '"' + hashlib.sha256(data).hexdigest()[:32] + '"'


def _open_temp(path: Path) -> tuple[Path, IO[bytes]]:
    # Same folder as the target, so os.replace is a rename within one file system.
    temp_path = path.with_name(f"{TEMP_FILE_PREFIX}{uuid.uuid4().hex}")
    return temp_path, temp_path.open("xb")


def _finish_temp(handle: IO[bytes], tail: bytes, temp_path: Path, path: Path) -> None:
    with handle:
        handle.write(tail)
        handle.flush()
        # Without fsync a crash right after the rename can leave an empty file on some file systems.
        os.fsync(handle.fileno())
    os.replace(temp_path, path)


def _discard_temp(handle: IO[bytes], temp_path: Path) -> None:
    handle.close()
    temp_path.unlink(missing_ok=True)


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp_path, handle = _open_temp(path)
    try:
        _finish_temp(handle, data, temp_path, path)
    except BaseException:
        _discard_temp(handle, temp_path)
        raise


def _list_user_files(folder: Path) -> list[str]:
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(entry.name for entry in entries if entry.is_file() and not is_internal_file(entry.name))


def _remove_tree(folder: Path) -> None:
    try:
        shutil.rmtree(folder)
    except FileNotFoundError:
        pass


def _write_status_locked(folder: Path, data: bytes, etag: str | None) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / STATUS_FILE_NAME
    with _exclusive_lock(folder / STATUS_LOCK_FILE_NAME):
        if etag is not None:
            try:
                current = path.read_bytes()
            except FileNotFoundError:
                raise ConcurrencyError(
                    f"status of {folder.parent.name}/{folder.name} was deleted after it was read"
                    f" (expected etag {etag}); read it again"
                ) from None
            current_etag = _etag_of(current)
            if current_etag != etag:
                raise ConcurrencyError(
                    f"status of {folder.parent.name}/{folder.name} changed after it was read"
                    f" (expected etag {etag}, found {current_etag}); read it again"
                )
        _write_atomic(path, data)
    return _etag_of(data)


@contextmanager
def _exclusive_lock(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `lock_path` for the block, across threads and processes.

    `delete_document` may unlink the lock file while a writer waits for it, after
    which a new writer would lock a fresh file. So the lock counts only when
    the locked file is still the one at `lock_path`; otherwise it is taken again.
    """
    while True:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _lock_fd(fd)
            try:
                same_file = os.path.samestat(os.fstat(fd), os.stat(lock_path))
            except FileNotFoundError:
                same_file = False
            if same_file:
                yield
                return
        finally:
            # Closing the descriptor also releases the lock.
            os.close(fd)
        lock_path.parent.mkdir(parents=True, exist_ok=True)


if sys.platform == "win32":
    import msvcrt

    def _lock_fd(fd: int) -> None:
        # NOTE: untested on Windows. LK_LOCK retries for about 10 seconds, then raises OSError.
        msvcrt.locking(fd, msvcrt.LK_LOCK, 1)

else:
    import fcntl

    def _lock_fd(fd: int) -> None:
        # flock locks belong to the open file description, so two threads of one
        # process that each open the file exclude each other too.
        fcntl.flock(fd, fcntl.LOCK_EX)

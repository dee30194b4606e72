"""Local folder storage: the shared contract, plus layout, path safety and locking across threads and processes."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kernel_memory.errors import ConcurrencyError, InvalidRequestError, PermanentError
from kernel_memory.settings import Settings, StorageSettings
from kernel_memory.storage import build_document_storage
from kernel_memory.storage.local import DEFAULT_BLOCK_SIZE, LocalDocumentStorage
from tests.storage_contract import DocumentStorageContract


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[LocalDocumentStorage]:
    async with LocalDocumentStorage(tmp_path / "files") as adapter:
        yield adapter


class TestLocalStorageContract(DocumentStorageContract):
    pass


def _all_files(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())


async def test_local_layout_index_document_file(tmp_path: Path) -> None:
    storage = LocalDocumentStorage(tmp_path)
    await storage.write_file("idx", "doc", "a.txt", b"x")
    assert (tmp_path / "idx" / "doc" / "a.txt").read_bytes() == b"x"


async def test_local_status_file_name(tmp_path: Path) -> None:
    storage = LocalDocumentStorage(tmp_path)
    await storage.write_status("idx", "doc", b"{}", etag=None)
    assert (tmp_path / "idx" / "doc" / "__pipeline_status.json").read_bytes() == b"{}"


@pytest.mark.parametrize(
    "name", ["../x.txt", "a/../../x.txt", "/tmp/x.txt", "..\\..\\x.txt", "../../../../x.txt"]
)
async def test_local_traversal_stays_in_document(tmp_path: Path, name: str) -> None:
    root = tmp_path / "root"
    storage = LocalDocumentStorage(root)
    await storage.write_file("idx", "doc", name, b"x")
    assert _all_files(tmp_path) == [os.path.join("root", "idx", "doc", "x.txt")]


@pytest.mark.parametrize("document_id", ["..", "../..", "../outside", "a/../../b", "/abs"])
async def test_local_traversal_id_writes_nothing(tmp_path: Path, document_id: str) -> None:
    storage = LocalDocumentStorage(tmp_path / "root")
    with pytest.raises(InvalidRequestError):
        await storage.write_file("idx", document_id, "a.txt", b"x")
    assert _all_files(tmp_path) == []


async def test_local_delete_traversal_keeps_root(tmp_path: Path) -> None:
    storage = LocalDocumentStorage(tmp_path / "root")
    await storage.write_file("idx", "doc", "a.txt", b"x")
    with pytest.raises(InvalidRequestError):
        await storage.delete_index("..")
    assert (tmp_path / "root" / "idx" / "doc" / "a.txt").exists()


async def test_local_symlink_out_of_root_rejected(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    root.mkdir()
    (root / "idx").symlink_to(outside, target_is_directory=True)
    storage = LocalDocumentStorage(root)
    with pytest.raises(PermanentError, match="outside the storage root"):
        await storage.write_file("idx", "doc", "a.txt", b"x")
    assert list(outside.iterdir()) == []


async def test_local_stream_blocks_64_kib(tmp_path: Path) -> None:
    storage = LocalDocumentStorage(tmp_path)
    await storage.write_file("idx", "doc", "a.bin", b"z" * (DEFAULT_BLOCK_SIZE * 2 + 10))
    sizes = [len(block) async for block in storage.stream_file("idx", "doc", "a.bin")]
    assert sizes == [DEFAULT_BLOCK_SIZE, DEFAULT_BLOCK_SIZE, 10]


async def test_local_stream_missing_raises_eagerly(tmp_path: Path) -> None:
    from kernel_memory.errors import NotFoundError

    storage = LocalDocumentStorage(tmp_path)
    with pytest.raises(NotFoundError):
        storage.stream_file("idx", "doc", "absent.bin")


async def test_local_failed_stream_leaves_no_temp(tmp_path: Path) -> None:
    async def failing() -> AsyncIterator[bytes]:
        yield b"x" * 3_000_000
        raise ConnectionResetError("client went away")

    storage = LocalDocumentStorage(tmp_path)
    with pytest.raises(ConnectionResetError):
        await storage.write_stream("idx", "doc", "a.bin", failing())
    assert _all_files(tmp_path) == []


async def test_local_writes_leave_no_temp(tmp_path: Path) -> None:
    storage = LocalDocumentStorage(tmp_path)
    await storage.write_file("idx", "doc", "a.txt", b"x")
    etag = await storage.write_status("idx", "doc", b"{}", etag=None)
    await storage.write_status("idx", "doc", b"[]", etag=etag)
    names = sorted(path.name for path in (tmp_path / "idx" / "doc").iterdir())
    assert names == ["__pipeline_status.json", "__pipeline_status.json.lock", "a.txt"]


async def test_local_readers_never_see_partial_file(tmp_path: Path) -> None:
    storage = LocalDocumentStorage(tmp_path)
    versions = [bytes([n]) * 2_000_000 for n in range(1, 6)]
    await storage.write_file("idx", "doc", "a.bin", versions[0])
    seen: list[bytes] = []

    async def read_repeatedly() -> None:
        for _ in range(40):
            seen.append(await storage.read_file("idx", "doc", "a.bin"))

    async def write_versions() -> None:
        for version in versions[1:]:
            await storage.write_file("idx", "doc", "a.bin", version)

    await asyncio.gather(read_repeatedly(), write_versions())
    assert all(data in versions for data in seen)


def test_local_cas_threads_one_winner(tmp_path: Path) -> None:
    storage = LocalDocumentStorage(tmp_path)
    etag = asyncio.run(storage.write_status("idx", "doc", b'{"n": 0}', etag=None))
    rounds = 30
    outcomes: list[str] = []
    lock = threading.Lock()

    for round_number in range(rounds):
        barrier = threading.Barrier(2)

        def contend(name: str, expected: str = etag, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            try:
                asyncio.run(
                    storage.write_status("idx", "doc", json.dumps({"by": name}).encode(), etag=expected)
                )
                result = "won"
            except ConcurrencyError:
                result = "lost"
            with lock:
                outcomes.append(result)

        threads = [threading.Thread(target=contend, args=(f"t{i}-{round_number}",)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        _, etag = asyncio.run(storage.read_status("idx", "doc"))

    assert outcomes.count("won") == rounds
    assert outcomes.count("lost") == rounds


def _increment_counter(root: str, times: int) -> None:
    """Add 1 to the counter in the status `times` times, rereading on every conflict."""

    async def run() -> None:
        storage = LocalDocumentStorage(Path(root))
        for _ in range(times):
            while True:
                data, etag = await storage.read_status("idx", "doc")
                counter = json.loads(data)["n"]
                try:
                    await storage.write_status(
                        "idx", "doc", json.dumps({"n": counter + 1}).encode(), etag=etag
                    )
                    break
                except ConcurrencyError:
                    continue

    asyncio.run(run())


def test_local_cas_processes_lose_no_update(tmp_path: Path) -> None:
    storage = LocalDocumentStorage(tmp_path)
    asyncio.run(storage.write_status("idx", "doc", b'{"n": 0}', etag=None))
    workers, times = 3, 40

    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_increment_counter, args=(str(tmp_path), times)) for _ in range(workers)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)

    assert [process.exitcode for process in processes] == [0] * workers
    data, _ = asyncio.run(storage.read_status("idx", "doc"))
    assert json.loads(data)["n"] == workers * times


def test_factory_local_under_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, storage=StorageSettings(type="local", directory=Path("files")))
    storage = build_document_storage(settings)
    assert isinstance(storage, LocalDocumentStorage)
    assert storage.root == (tmp_path / "files").resolve()


def test_factory_local_absolute_directory(tmp_path: Path) -> None:
    settings = Settings(data_dir=Path("elsewhere"), storage=StorageSettings(directory=tmp_path / "abs"))
    storage = build_document_storage(settings)
    assert storage.root == (tmp_path / "abs").resolve()

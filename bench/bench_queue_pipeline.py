"""Pipeline throughput through Azurite queues with the serve worker, against the in-process dispatcher.

Both runs import the same documents into Azurite blob storage and SQLite with
the same embedder; only the way step messages travel differs. Prints documents
per minute for each, their ratio, and the mean queue hop per step: the time
from sending a step's message to that step starting, which is what the
queues add.

The default embedder is a hashed bag of words (no model), so the numbers show
the queue's cost rather than the model's. `--embedder local` uses the local
model instead.

Needs Azurite on 127.0.0.1:10000 and :10001.

Usage: python bench/bench_queue_pipeline.py [--corpus ../shared/corpus] [--copies 2] [--embedder hash|local]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from kernel_memory.memory import Memory, UploadedFile
from kernel_memory.settings import Settings
from tests.service_support import HashEmbedder, build_memory, delete_azure_resources

# Azurite's well-known development account (public, the same in every Azurite install).
AZURITE = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
    "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
    "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"
    "QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;"
)
# Documents imported one at a time after the throughput run, to time idle hops.
IDLE_DOCUMENTS = 5
DOCUMENT_SUFFIXES = {".txt", ".md", ".html", ".json", ".docx", ".pdf", ".pptx", ".xlsx"}


class StepTimer:
    """Records when each step message was sent and when its step started, per document execution."""

    def __init__(self) -> None:
        self.sent: dict[tuple[str, str, str], float] = {}
        # Hops per phase ("load", "idle"), then per step.
        self.phase = "load"
        self.hops: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))

    def wrap(self, memory: Memory) -> None:
        pipeline = memory.pipeline
        dispatch = pipeline.dispatcher.dispatch
        run_step = pipeline.run_step

        async def timed_dispatch(step: str, body: dict[str, Any]) -> None:
            self.sent[(body.get("document_id", ""), body.get("execution_id", ""), step)] = time.perf_counter()
            await dispatch(step, body)

        async def timed_run_step(step: str, body: dict[str, Any], **options: Any):
            key = (body.get("document_id", ""), body.get("execution_id", ""), step)
            if key in self.sent:
                self.hops[self.phase][step].append(time.perf_counter() - self.sent.pop(key))
            return await run_step(step, body, **options)

        pipeline.dispatcher.dispatch = timed_dispatch
        pipeline.run_step = timed_run_step


def settings_for(data_dir: Path, *, queue_type: str, embedder: str) -> Settings:
    unique = uuid.uuid4().hex[:10]
    azure = {"connection_string": AZURITE}
    return Settings(
        data_dir=data_dir,
        storage={"type": "azure_blob", "container": f"bench-{unique}", "azure": azure},
        queue={"type": queue_type, "prefix": f"b{unique}", "azure": azure, "poll_interval_seconds": 1.0},
        embedding={"type": "local"} if embedder == "local" else {},
    )


def documents(corpus: Path, copies: int) -> list[tuple[str, list[UploadedFile]]]:
    paths = sorted(p for p in (corpus / "km-samples").iterdir() if p.suffix in DOCUMENT_SUFFIXES)
    paths += sorted(
        p
        for p in (corpus / "contoso").iterdir()
        if p.suffix in {".md", ".pdf"} and p.stat().st_size < 300_000
    )
    docs = []
    for copy in range(copies):
        for path in paths:
            docs.append(
                (
                    f"{path.stem}-{copy}".replace(" ", "-"),
                    [UploadedFile(name=path.name, data=path.read_bytes())],
                )
            )
    return docs


async def wait_all(memory: Memory, document_ids: list[str], *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pending = set(document_ids)
    while pending:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(pending)} documents did not finish within {timeout} s")
        for document_id in list(pending):
            state = await memory.get_status("bench", document_id)
            if state.completed or state.failed:
                pending.discard(document_id)
        if pending:
            await asyncio.sleep(0.2)


async def run(mode: str, docs, *, embedder_name: str, data_dir: Path) -> tuple[float, StepTimer, int]:
    from kernel_memory.queues import build_queue_client
    from kernel_memory.worker import QueueWorker

    settings = settings_for(
        data_dir, queue_type="azure_queue" if mode == "queues" else "in_process", embedder=embedder_name
    )
    memory = (
        build_memory(settings, embedder=HashEmbedder())
        if embedder_name == "hash"
        else Memory.from_settings(settings)
    )
    timer = StepTimer()
    worker = consumer = None
    if mode == "queues":
        consumer = build_queue_client(settings)
        worker = QueueWorker(memory, consumer)
        worker.start()
    timer.wrap(memory)
    try:
        started = time.perf_counter()
        for document_id, files in docs:
            await memory.import_files(files, index="bench", document_id=document_id)
        if mode == "queues":
            await wait_all(memory, [document_id for document_id, _ in docs], timeout=1800)
        else:
            await memory.wait_for_pipeline()
        elapsed = time.perf_counter() - started
        failed = 0
        for document_id, _ in docs:
            failed += (await memory.get_status("bench", document_id)).failed

        # Then one small document at a time, so a hop is the transport alone, with no backlog to wait behind.
        timer.phase = "idle"
        for number in range(IDLE_DOCUMENTS):
            document_id = f"idle-{number}"
            await memory.import_files(
                [UploadedFile(name="idle.txt", data=b"A short note to time the queue hops.")],
                index="bench",
                document_id=document_id,
            )
            if mode == "queues":
                await wait_all(memory, [document_id], timeout=120)
            else:
                await memory.wait_for_pipeline()
    finally:
        if worker is not None:
            worker.stop()
            await worker.wait()
            await consumer.close()
        await memory.aclose()
        await delete_azure_resources(settings)
    return elapsed, timer, failed


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", type=Path, default=REPO_ROOT.parent / "shared" / "corpus")
    parser.add_argument(
        "--copies", type=int, default=2, help="times each document is imported, under new ids"
    )
    parser.add_argument("--embedder", choices=("hash", "local"), default="hash")
    args = parser.parse_args()

    docs = documents(args.corpus, args.copies)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("in_process", "queues"):
            results[mode] = await run(mode, docs, embedder_name=args.embedder, data_dir=Path(tmp) / mode)

    print(f"{len(docs)} documents, embedder {args.embedder}, Azurite blobs, SQLite memory DB")
    for mode, (elapsed, _, failed) in results.items():
        print(f"{mode:12} {len(docs) / elapsed * 60:8.1f} documents/min  ({elapsed:.1f} s, {failed} failed)")
    ratio = results["in_process"][0] / results["queues"][0]
    print(f"queues / in-process throughput: {ratio:.2f}x")
    queues, in_process = results["queues"][1], results["in_process"][1]
    print_hops("under load, backlog included", queues.hops["load"], in_process.hops["load"])
    print_hops(
        f"idle, {IDLE_DOCUMENTS} documents one at a time", queues.hops["idle"], in_process.hops["idle"]
    )


def print_hops(title: str, queues: dict[str, list[float]], in_process: dict[str, list[float]]) -> None:
    print(f"mean hop from send to step start ({title}): queues vs in-process")
    for step, values in queues.items():
        baseline = in_process.get(step) or [float("nan")]
        print(
            f"  {step:16} {statistics.mean(values) * 1000:7.0f} ms  vs {statistics.mean(baseline) * 1000:6.0f} ms"
            f"  ({len(values)} messages)"
        )
    every_hop = [value for values in queues.values() for value in values]
    every_baseline = [value for values in in_process.values() for value in values]
    print(
        f"  {'all steps':16} {statistics.mean(every_hop) * 1000:7.0f} ms  vs"
        f" {statistics.mean(every_baseline) * 1000:6.0f} ms"
    )


if __name__ == "__main__":
    asyncio.run(main())

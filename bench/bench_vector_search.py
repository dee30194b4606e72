"""Vector search of the SQLite memory DB against a plain numpy scan of the same vectors.

The baseline is the least work any exact search must do: one matrix-vector
product over every normalised vector in memory, then np.argpartition for the
top k. The memory DB adds the async hop to a worker thread, its index lookup
and reading the winning records from SQLite. With a filter it also looks up
the matching row ids in the tags table (kept in memory until the next write),
but scores only those rows. The "after a write" case replaces one record
before each query, so the row ids come from SQLite every time. The hybrid
case adds keyword search for a word in nearly every record and a code in
0.1% of them.

    python bench/bench_vector_search.py                  # 100,000 records of 384 dimensions
    python bench/bench_vector_search.py --records 20000  # quicker

Prints the p50 of each case, its ratio to the baseline, and the time to load
the vectors into memory on the first search. The cases take turns on each
query, so load from other programs on the machine hits them alike.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from kernel_memory.memorydb.sqlite import SqliteMemoryDb
from kernel_memory.models import MemoryRecord

INDEX = "bench"
# Records get tag bucket:0..9 in turn, so a filter on one bucket matches 10%. Their text is 40
# words drawn from WORDS, so each word is in nearly every record, and one of 1000 codes.
BUCKETS = 10
WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "zeta",
    "eta",
    "theta",
    "iota",
    "kappa",
    "lambda",
    "omicron",
    "sigma",
    "tau",
    "omega",
]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=100_000, help="records in the index (default 100000)")
    parser.add_argument("--dimensions", type=int, default=384, help="vector size (default 384)")
    parser.add_argument("--queries", type=int, default=200, help="timed queries per case (default 200)")
    parser.add_argument(
        "--limit", type=int, default=10, help="results per query, the k of top-k (default 10)"
    )
    parser.add_argument("--seed", type=int, default=7)
    arguments = parser.parse_args()
    asyncio.run(run(arguments))


async def run(arguments: argparse.Namespace) -> None:
    rng = np.random.default_rng(arguments.seed)
    vectors = rng.standard_normal((arguments.records, arguments.dimensions), dtype=np.float32)
    queries = rng.standard_normal((arguments.queries, arguments.dimensions), dtype=np.float32)

    with tempfile.TemporaryDirectory() as folder:
        db = SqliteMemoryDb(Path(folder) / "bench.sqlite3")
        started = time.perf_counter()
        await fill(db, vectors, rng)
        print(
            f"inserted {arguments.records} records of {arguments.dimensions} dimensions "
            f"in {time.perf_counter() - started:.1f} s"
        )

        started = time.perf_counter()
        await db.search(INDEX, query_text="", query_vector=queries[0].tolist(), limit=arguments.limit)
        print(f"first search, loading the vectors: {(time.perf_counter() - started) * 1000:.0f} ms")

        matrix = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        bucket_rows = np.flatnonzero(np.arange(arguments.records) % BUCKETS == 0)
        timings = await measure(db, matrix, bucket_rows, queries, arguments.limit)
        db.close()

    baseline = timings["numpy, all rows"]
    preselected = timings["numpy, 10% of rows preselected"]
    for case, p50 in timings.items():
        line = f"{case:<44} p50 {p50:7.2f} ms"
        if case.startswith("SqliteMemoryDb"):
            line += f"   ratio {p50 / baseline:.2f} to the full numpy scan"
            if "10% filter" in case:
                line += f", {p50 / preselected:.2f} to the preselected one"
        print(line)


async def measure(
    db: SqliteMemoryDb, matrix: np.ndarray, bucket_rows: np.ndarray, queries: np.ndarray, k: int
) -> dict[str, float]:
    """Time every case on each query in turn, so that load from other programs hits all cases alike."""
    durations: dict[str, list[float]] = {
        "numpy, all rows": [],
        "SqliteMemoryDb, no filter": [],
        "numpy, 10% of rows preselected": [],
        "SqliteMemoryDb, 10% filter": [],
        "SqliteMemoryDb, 10% filter after a write": [],
        "SqliteMemoryDb, hybrid": [],
    }
    bucket = [{"bucket": ["0"]}]
    for number, query in enumerate(queries):
        vector = query.tolist()
        durations["numpy, all rows"].append(time_numpy(matrix, query, k))
        durations["SqliteMemoryDb, no filter"].append(await time_db(db, vector, k, filters=None))
        durations["numpy, 10% of rows preselected"].append(time_numpy(matrix, query, k, rows=bucket_rows))
        durations["SqliteMemoryDb, 10% filter"].append(await time_db(db, vector, k, filters=bucket))

        # Hybrid: a common word (left out of the keyword side) and a code in 0.1% of the records.
        durations["SqliteMemoryDb, hybrid"].append(
            await time_db(db, vector, k, filters=None, text=f"omega code{number % 1000}")
        )

        # A write changes the index's generation, so the filter's row ids come from SQLite again
        # and the cached matrix takes the new vector in place.
        replaced = int(bucket_rows[number % len(bucket_rows)])
        await db.upsert(INDEX, [bench_record(replaced, matrix[replaced], "replaced")])
        durations["SqliteMemoryDb, 10% filter after a write"].append(
            await time_db(db, vector, k, filters=bucket)
        )

    return {case: statistics.median(values) * 1000 for case, values in durations.items()}


async def fill(db: SqliteMemoryDb, vectors: np.ndarray, rng: np.random.Generator) -> None:
    await db.create_index(INDEX, vectors.shape[1])
    batch = 1000
    for start in range(0, len(vectors), batch):
        records = [
            bench_record(i, vectors[i], " ".join([*rng.choice(WORDS, size=40), f"code{i % 1000}"]))
            for i in range(start, min(start + batch, len(vectors)))
        ]
        await db.upsert(INDEX, records)


def bench_record(number: int, vector: np.ndarray, text: str) -> MemoryRecord:
    return MemoryRecord(
        id=f"record-{number}",
        vector=vector.tolist(),
        tags={"bucket": [str(number % BUCKETS)], "__document_id": [f"doc-{number // 100}"]},
        payload={"text": text},
    )


def time_numpy(matrix: np.ndarray, query: np.ndarray, k: int, *, rows: np.ndarray | None = None) -> float:
    """Return the seconds of matrix @ q plus top-k; with `rows`, over those rows only."""
    started = time.perf_counter()
    q = query / np.linalg.norm(query)
    scores = (matrix if rows is None else matrix[rows]) @ q
    best = np.argpartition(-scores, k - 1)[:k]
    best[np.argsort(-scores[best])]
    return time.perf_counter() - started


async def time_db(
    db: SqliteMemoryDb, vector: list[float], k: int, *, filters: list | None, text: str = ""
) -> float:
    started = time.perf_counter()
    results = await db.search(INDEX, query_text=text, query_vector=vector, filters=filters, limit=k)
    elapsed = time.perf_counter() - started
    assert len(results) == k, f"expected {k} results, got {len(results)}"
    return elapsed


if __name__ == "__main__":
    main()

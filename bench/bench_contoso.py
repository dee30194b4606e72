"""Import the Contoso corpus on the embedded defaults, then measure retrieval on its 20 dev questions.

Prints:
- import: seconds, peak RSS, embedding model calls; re-import of the same files
  (model calls must be 0) and its time as a ratio of the first import;
- retrieval: page-level hit@5 (a top-5 result covers a cited page +-1),
  file-level hit@1 and hit@5 and MRR, for the ranking that search and ask use
  (hybrid search, then result diversity) and for a keyword-only (SQLite FTS5
  BM25) baseline over the same records, with ratios.

Usage: python bench/bench_contoso.py [--corpus ../shared/corpus] [--data-dir DIR] [--chunk-tokens N]
       [--overlap-tokens N]

Settings come from the environment as usual, so for example
KM_RETRIEVAL__DIVERSIFY=false ranks without result diversity.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import resource
import sys
import tempfile
import time
from pathlib import Path

from kernel_memory.memory import Memory
from kernel_memory.models import ScoredRecord
from kernel_memory.retrieval.citations import first_tag
from kernel_memory.settings import Settings

CITATION = re.compile(r"\[([^\]#]+)#page=(\d+)\]")
INDEX = "contoso"


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def import_corpus(memory: Memory, corpus: Path, args: dict) -> tuple[float, int]:
    started = time.perf_counter()
    calls_before = memory.ctx.embedder.counters.model_calls
    for path in sorted((corpus / "contoso").iterdir()):
        if path.suffix in {".pdf", ".md"}:
            await memory.import_paths([path], index=INDEX, document_id=path.stem, args=args)
            await memory.wait_for_pipeline()
            state = await memory.get_status(INDEX, path.stem)
            if not state.completed:
                sys.exit(f"{path.name} did not complete: {state.error}")
    return time.perf_counter() - started, memory.ctx.embedder.counters.model_calls - calls_before


def score(results: list[ScoredRecord], cited: list[tuple[str, int]]) -> dict[str, float]:
    cited_files = {name for name, _ in cited}
    files = [r.record.payload.get("file", "") for r in results]
    page_hit = any(
        r.record.payload.get("file") == name and any(abs(int(p) - page) <= 1 for p in r.record.payload.get("sections", []))
        for r in results[:5]
        for name, page in cited
    )
    rank = next((i + 1 for i, name in enumerate(files) if name in cited_files), None)
    return {
        "page_hit5": float(page_hit),
        "file_hit1": float(bool(files) and files[0] in cited_files),
        "file_hit5": float(any(name in cited_files for name in files[:5])),
        "file_mrr": 1 / rank if rank else 0.0,
    }


async def evaluate(memory: Memory, questions: list[dict], *, keyword_only: bool) -> dict[str, float]:
    totals: dict[str, float] = {}
    for item in questions:
        cited = [(name, int(page)) for name, page in CITATION.findall(item["truth"])]
        if keyword_only:
            results = await memory.ctx.memory_db.search(
                INDEX, query_text=item["question"], query_vector=None, limit=10
            )
        else:
            results = await memory.retriever.find(INDEX, item["question"], limit=10)
        # Summaries and other synthetic records carry no pages; this benchmark never creates them.
        results = [r for r in results if not first_tag(r.record.tags, "__synth")]
        for key, value in score(results, cited).items():
            totals[key] = totals.get(key, 0.0) + value
    return {key: value / len(questions) for key, value in totals.items()}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "corpus")
    parser.add_argument("--data-dir", type=Path, help="reuse this data folder (default: a new temporary one)")
    parser.add_argument("--chunk-tokens", type=int, help="custom_partitioning_max_tokens_per_paragraph")
    parser.add_argument("--overlap-tokens", type=int, help="custom_partitioning_overlapping_tokens")
    options = parser.parse_args()

    data_dir = options.data_dir or Path(tempfile.mkdtemp(prefix="km-bench-"))
    args = {}
    if options.chunk_tokens is not None:
        args["custom_partitioning_max_tokens_per_paragraph"] = options.chunk_tokens
    if options.overlap_tokens is not None:
        args["custom_partitioning_overlapping_tokens"] = options.overlap_tokens
    memory = Memory.from_settings(Settings(data_dir=data_dir))
    try:
        first_seconds, first_calls = await import_corpus(memory, options.corpus, args)
        records = await memory.ctx.memory_db.count(INDEX)
        print(f"import: {first_seconds:.1f} s, {records} records, {first_calls} embedding calls, "
              f"peak RSS {peak_rss_mib():.0f} MiB (data in {data_dir})")

        again_seconds, again_calls = await import_corpus(memory, options.corpus, args)
        print(f"re-import: {again_seconds:.1f} s, {again_calls} embedding calls, "
              f"ratio to first import {again_seconds / first_seconds:.2f}x")

        lines = (options.corpus / "contoso" / "questions-dev.jsonl").read_text(encoding="utf-8").splitlines()
        questions = [json.loads(line) for line in lines if line.strip()]
        hybrid = await evaluate(memory, questions, keyword_only=False)
        keyword = await evaluate(memory, questions, keyword_only=True)
        print(f"retrieval on {len(questions)} questions (hybrid vs keyword-only BM25 baseline):")
        for key in hybrid:
            ratio = hybrid[key] / keyword[key] if keyword[key] else float("inf")
            print(f"  {key:10s} hybrid {hybrid[key]:.2f}  keyword {keyword[key]:.2f}  ratio {ratio:.2f}x")
    finally:
        await memory.aclose()


if __name__ == "__main__":
    asyncio.run(main())

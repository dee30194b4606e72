"""Result diversity: the pure reordering, and the ranking that search and ask use, on a real SQLite memory DB."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import pytest

from kernel_memory.memorydb.sqlite import SqliteMemoryDb
from kernel_memory.models import (
    TAG_DOCUMENT_ID,
    TAG_FILE_ID,
    TAG_FILE_TYPE,
    MemoryRecord,
    ScoredRecord,
)
from kernel_memory.retrieval.diversity import diversify
from kernel_memory.retrieval.service import Retriever
from kernel_memory.settings import Settings

INDEX = "pages"


def _record(
    record_id: str,
    pages: list[int],
    *,
    document: str = "plan",
    file_type: str = "application/pdf",
    vector: list[float] | None = None,
) -> MemoryRecord:
    return MemoryRecord(
        id=record_id,
        vector=vector,
        tags={TAG_DOCUMENT_ID: [document], TAG_FILE_ID: [f"{document}-file"], TAG_FILE_TYPE: [file_type]},
        payload={"text": f"text of {record_id}", "file": f"{document}.pdf", "sections": pages},
    )


def _scored(record_id: str, pages: list[int], **options: str) -> ScoredRecord:
    return ScoredRecord(record=_record(record_id, pages, **options), relevance=0.9)


def _ids(results: Sequence[ScoredRecord]) -> list[str]:
    return [scored.record.id for scored in results]


def test_repeated_page_moves_after_others() -> None:
    results = [
        _scored("a", [7, 8]),
        _scored("b", [8]),
        _scored("c", [12]),
        _scored("d", [7]),
        _scored("e", [30]),
    ]
    assert _ids(diversify(results)) == ["a", "c", "e", "b", "d"]


def test_other_files_keep_their_place() -> None:
    results = [_scored("a", [3]), _scored("b", [3], document="other"), _scored("c", [3])]
    assert _ids(diversify(results)) == ["a", "b", "c"]


def test_formats_without_pages_keep_their_place() -> None:
    # Every chunk of a text file is section 1, which is no page.
    results = [
        _scored("a", [1], file_type="text/plain"),
        _scored("b", [1], file_type="text/plain"),
        _scored("c", [2]),
    ]
    assert _ids(diversify(results)) == ["a", "b", "c"]


def test_nothing_is_dropped() -> None:
    results = [_scored(f"r{i}", [i // 3]) for i in range(12)]
    reordered = diversify(results)
    assert sorted(_ids(reordered)) == sorted(_ids(results))
    assert _ids(reordered)[:4] == ["r0", "r3", "r6", "r9"]


class _AxisEmbedder:
    """Embeds every query as the first axis, so a record's cosine is its vector's first value."""

    model_id = "axis-2"
    max_input_tokens = 512
    dimensions = 2

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        return [[1.0, 0.0] for _ in texts]

    async def embed_query(self, text: str) -> list[float]:
        return [1.0, 0.0]


def _toward_axis(cosine: float) -> list[float]:
    return [cosine, math.sqrt(1 - cosine * cosine)]


@pytest.fixture
async def memory_db(tmp_path: Path):
    db = SqliteMemoryDb(tmp_path / "memory.sqlite3")
    await db.create_index(INDEX, 2)
    # Four chunks of page 5 rank above the one chunk of page 9.
    await db.upsert(
        INDEX,
        [
            _record("p5-a", [5], vector=_toward_axis(0.99)),
            _record("p5-b", [5], vector=_toward_axis(0.98)),
            _record("p5-c", [4, 5], vector=_toward_axis(0.97)),
            _record("p5-d", [5, 6], vector=_toward_axis(0.96)),
            _record("p9", [9], vector=_toward_axis(0.50)),
        ],
    )
    yield db
    db.close()


@pytest.mark.parametrize(("enabled", "expected"), [(True, ["p5-a", "p9", "p5-b"]), (False, ["p5-a", "p5-b", "p5-c"])])
async def test_find_reaches_beyond_the_limit(memory_db: SqliteMemoryDb, enabled: bool, expected: list[str]) -> None:
    settings = Settings.model_validate({"retrieval": {"diversify": enabled}})
    retriever = Retriever(settings, memory_db=memory_db, embedder=_AxisEmbedder(), text_generator=None)  # type: ignore[arg-type]

    # A query with no keyword match ranks by vectors alone.
    results = await retriever.find(INDEX, "zzzz", limit=3)

    assert _ids(results) == expected

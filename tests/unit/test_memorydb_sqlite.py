"""SqliteMemoryDb against real SQLite files: filters, search modes, writes, concurrency, persistence."""

from __future__ import annotations

import asyncio
import math
import sqlite3
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kernel_memory.errors import InvalidRequestError, NotFoundError, PermanentError
from kernel_memory.memorydb.sqlite import SqliteMemoryDb
from kernel_memory.models import MemoryRecord

INDEX = "test"
REPO_ROOT = Path(__file__).resolve().parents[2]


def unit(*values: float) -> list[float]:
    norm = math.sqrt(sum(value * value for value in values))
    return [value / norm for value in values]


def record(
    record_id: str,
    vector: list[float] | None,
    text: str = "",
    **tags: list[str],
) -> MemoryRecord:
    return MemoryRecord(id=record_id, vector=vector, tags=dict(tags), payload={"text": text, "file": "f.txt"})


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[SqliteMemoryDb]:
    memory_db = SqliteMemoryDb(tmp_path / "memory.sqlite3")
    await memory_db.create_index(INDEX, 3)
    yield memory_db
    memory_db.close()


@pytest.fixture
async def tagged_db(db: SqliteMemoryDb) -> SqliteMemoryDb:
    """Three records with the tag values that break naive filter escaping."""
    await db.upsert(
        INDEX,
        [
            record(
                "menu",
                unit(1, 0, 0),
                "Lunch menu for the quarter",
                colors=["red", "white"],
                period=["Q1'24"],
                file=["Team's Menu.pdf"],
            ),
            record("report", unit(0, 1, 0), "Quarterly report", colors=["red"], period=["Q2'24"]),
            record("flag", unit(0, 0, 1), "Flag colours", colors=["red,white"], period=["Q1'24"]),
        ],
    )
    return db


async def ids_matching(db: SqliteMemoryDb, filters: list[dict[str, list[str]]]) -> set[str]:
    return {r.id for r in await db.get_list(INDEX, filters=filters)}


# ---------------------------------------------------------------- filters


async def test_filter_and_inside_one_filter(tagged_db: SqliteMemoryDb) -> None:
    assert await ids_matching(tagged_db, [{"colors": ["red"], "period": ["Q1'24"]}]) == {"menu"}


async def test_filter_and_of_two_values_of_one_key(tagged_db: SqliteMemoryDb) -> None:
    assert await ids_matching(tagged_db, [{"colors": ["red", "white"]}]) == {"menu"}


async def test_filter_or_between_filters(tagged_db: SqliteMemoryDb) -> None:
    filters = [{"period": ["Q2'24"]}, {"file": ["Team's Menu.pdf"]}]
    assert await ids_matching(tagged_db, filters) == {"menu", "report"}


async def test_filter_comma_is_one_value(tagged_db: SqliteMemoryDb) -> None:
    assert await ids_matching(tagged_db, [{"colors": ["red,white"]}]) == {"flag"}


async def test_filter_quote_matches_exactly(tagged_db: SqliteMemoryDb) -> None:
    assert await ids_matching(tagged_db, [{"period": ["Q1'24"]}]) == {"menu", "flag"}
    assert await ids_matching(tagged_db, [{"file": ["Team's Menu.pdf"]}]) == {"menu"}
    assert await ids_matching(tagged_db, [{"file": ["Team's Menu"]}]) == set()


@pytest.mark.parametrize(
    "memory_filter",
    [
        {"file": ["x' OR '1'='1"]},
        {"file": ["Team's Menu.pdf' OR 1=1 --"]},
        {"x' OR '1'='1": ["red"]},
        {"colors": ["%"]},
        {"colors": ['red"']},
        {"colors": ["red); DROP TABLE records; --"]},
    ],
)
async def test_filter_injection_matches_nothing(tagged_db: SqliteMemoryDb, memory_filter: dict) -> None:
    assert await tagged_db.count(INDEX, filters=[memory_filter]) == 0
    assert await tagged_db.count(INDEX) == 3


async def test_filter_empty_matches_everything(tagged_db: SqliteMemoryDb) -> None:
    assert await tagged_db.count(INDEX, filters=[]) == 3
    assert await tagged_db.count(INDEX, filters=[{}]) == 3
    assert await tagged_db.count(INDEX, filters=[{"colors": []}]) == 3
    assert await tagged_db.count(INDEX, filters=[{"period": ["none"]}, {}]) == 3


async def test_filter_applies_to_vector_search(tagged_db: SqliteMemoryDb) -> None:
    results = await tagged_db.search(
        INDEX, query_text="", query_vector=unit(1, 0, 0), filters=[{"period": ["Q2'24"]}]
    )
    assert [r.record.id for r in results] == ["report"]


async def test_filter_applies_to_keyword_search(tagged_db: SqliteMemoryDb) -> None:
    results = await tagged_db.search(
        INDEX, query_text="quarterly quarter", query_vector=None, filters=[{"file": ["Team's Menu.pdf"]}]
    )
    assert [r.record.id for r in results] == ["menu"]


async def test_filter_applies_to_hybrid_search(tagged_db: SqliteMemoryDb) -> None:
    results = await tagged_db.search(
        INDEX, query_text="report", query_vector=unit(0, 1, 0), filters=[{"colors": ["red,white"]}]
    )
    assert [r.record.id for r in results] == ["flag"]


# ---------------------------------------------------------------- vector search


async def test_vector_search_relevance_is_cosine(db: SqliteMemoryDb) -> None:
    await db.upsert(INDEX, [record("a", [2, 0, 0]), record("b", [1, 1, 0])])
    results = await db.search(INDEX, query_text="", query_vector=[3, 0, 0])
    assert [r.record.id for r in results] == ["a", "b"]
    assert results[0].relevance == pytest.approx(1.0)
    assert results[1].relevance == pytest.approx(1 / math.sqrt(2), abs=1e-6)


async def test_vector_search_min_relevance(db: SqliteMemoryDb) -> None:
    await db.upsert(
        INDEX,
        [record("near", unit(1, 0.1, 0)), record("mid", unit(1, 1, 0)), record("far", unit(0, 0, 1))],
    )
    results = await db.search(INDEX, query_text="", query_vector=[1, 0, 0], min_relevance=0.7)
    assert [r.record.id for r in results] == ["near", "mid"]


async def test_vector_search_limit(db: SqliteMemoryDb) -> None:
    await db.upsert(INDEX, [record(f"r{i}", unit(1, i / 10, 0)) for i in range(20)])
    results = await db.search(INDEX, query_text="", query_vector=[1, 0, 0], limit=5)
    assert [r.record.id for r in results] == ["r0", "r1", "r2", "r3", "r4"]


async def test_vector_search_no_limit(db: SqliteMemoryDb) -> None:
    await db.upsert(INDEX, [record(f"r{i}", unit(1, i / 10, 0)) for i in range(20)])
    results = await db.search(INDEX, query_text="", query_vector=[1, 0, 0], limit=0)
    assert len(results) == 20


async def test_vector_search_negative_cosine_is_zero(db: SqliteMemoryDb) -> None:
    await db.upsert(INDEX, [record("opposite", [-1, 0, 0])])
    results = await db.search(INDEX, query_text="", query_vector=[1, 0, 0])
    assert [r.relevance for r in results] == [0.0]


async def test_vector_search_skips_missing_vectors(db: SqliteMemoryDb) -> None:
    await db.upsert(INDEX, [record("plain", None, "no vector"), record("a", unit(1, 0, 0))])
    results = await db.search(INDEX, query_text="", query_vector=[1, 0, 0])
    assert [r.record.id for r in results] == ["a"]


async def test_vector_search_wrong_dimensions(db: SqliteMemoryDb) -> None:
    with pytest.raises(InvalidRequestError, match="4 dimensions"):
        await db.search(INDEX, query_text="", query_vector=[1, 0, 0, 0])


async def test_vector_search_missing_index_is_empty(db: SqliteMemoryDb) -> None:
    assert await db.search("nothing-here", query_text="x", query_vector=[1, 0, 0]) == []


async def test_vector_search_follows_writes(db: SqliteMemoryDb) -> None:
    await db.upsert(INDEX, [record("a", unit(1, 0, 0)), record("b", unit(0, 1, 0))])
    assert (await db.search(INDEX, query_text="", query_vector=[0, 0, 1], limit=1))[0].record.id in {"a", "b"}

    await db.upsert(INDEX, [record("c", unit(0, 0, 1))])
    assert (await db.search(INDEX, query_text="", query_vector=[0, 0, 1], limit=1))[0].record.id == "c"

    await db.upsert(INDEX, [record("a", unit(0, 0.1, 1))])
    await db.delete(INDEX, ["c"])
    assert (await db.search(INDEX, query_text="", query_vector=[0, 0, 1], limit=1))[0].record.id == "a"


async def test_vector_search_record_gets_vector_later(db: SqliteMemoryDb) -> None:
    await db.upsert(INDEX, [record("late", None, "text first"), record("b", unit(0, 1, 0))])
    await db.search(INDEX, query_text="", query_vector=[1, 0, 0])
    await db.upsert(INDEX, [record("late", unit(1, 0, 0), "text first")])
    results = await db.search(INDEX, query_text="", query_vector=[1, 0, 0], limit=1)
    assert results[0].record.id == "late"


# ---------------------------------------------------------------- keyword search


async def test_keyword_search_special_tokens_verbatim(db: SqliteMemoryDb) -> None:
    text = "Sequences end with <|endoftext|> and chat turns start with <|im_start|>user."
    await db.upsert(INDEX, [record("special", unit(1, 0, 0), text), record("other", unit(0, 1, 0), "plain")])
    results = await db.search(INDEX, query_text="endoftext", query_vector=None)
    assert [r.record.payload["text"] for r in results] == [text]


async def test_keyword_search_special_tokens_case_file(db: SqliteMemoryDb, cases_dir: Path) -> None:
    text = (cases_dir / "special-tokens.txt").read_text(encoding="utf-8")
    await db.upsert(INDEX, [record("special", unit(1, 0, 0), text)])
    results = await db.search(INDEX, query_text="endoftext", query_vector=None)
    assert [r.record.payload["text"] for r in results] == [text]


async def test_keyword_search_relevance_best_is_one(db: SqliteMemoryDb) -> None:
    await db.upsert(
        INDEX,
        [
            record("both", unit(1, 0, 0), "opening hours of the canteen"),
            record("one", unit(0, 1, 0), "opening ceremony"),
            record("none", unit(0, 0, 1), "parking"),
        ],
    )
    results = await db.search(INDEX, query_text="canteen opening hours", query_vector=None)
    assert [r.record.id for r in results] == ["both", "one"]
    assert results[0].relevance == 1.0
    assert 0.0 < results[1].relevance < 1.0


@pytest.mark.parametrize(
    "query",
    [
        '"',
        "'",
        "Q1'24",
        "colors:red,white",
        "AND",
        "OR",
        "NOT",
        "NEAR(",
        "NEAR(a b",
        "*",
        "^x",
        "-x",
        "(",
        ")",
        "{body}:x",
        "body:x",
        "x' OR '1'='1",
        '"unterminated',
        "a + b",
        "\\",
        "\x00",
    ],
)
async def test_keyword_search_hostile_query(tagged_db: SqliteMemoryDb, query: str) -> None:
    results = await tagged_db.search(INDEX, query_text=query, query_vector=None)
    assert isinstance(results, list)


async def test_keyword_search_quoted_term_found(db: SqliteMemoryDb) -> None:
    await db.upsert(
        INDEX,
        [record("q", unit(1, 0, 0), "Revenue in Q1'24 grew"), record("r", unit(0, 1, 0), "Revenue fell")],
    )
    results = await db.search(INDEX, query_text="Q1'24", query_vector=None)
    assert [r.record.id for r in results] == ["q"]


async def test_keyword_search_operator_words_are_text(db: SqliteMemoryDb) -> None:
    await db.upsert(
        INDEX, [record("near", unit(1, 0, 0), "stay NEAR the exit"), record("o", unit(0, 1, 0), "x")]
    )
    results = await db.search(INDEX, query_text="NEAR(", query_vector=None)
    assert [r.record.id for r in results] == ["near"]


async def test_keyword_search_ignores_diacritics(db: SqliteMemoryDb) -> None:
    await db.upsert(INDEX, [record("cafe", unit(1, 0, 0), "Le café est ouvert")])
    results = await db.search(INDEX, query_text="cafe", query_vector=None)
    assert [r.record.id for r in results] == ["cafe"]


async def test_keyword_search_japanese_without_spaces(db: SqliteMemoryDb) -> None:
    await db.upsert(
        INDEX,
        [
            record("tokyo", unit(1, 0, 0), "東京タワーの高さは333メートルです。"),
            record("kyoto", unit(0, 1, 0), "京都の寺は古い。"),
        ],
    )
    results = await db.search(INDEX, query_text="東京", query_vector=None)
    assert [r.record.id for r in results] == ["tokyo"]


async def test_keyword_search_chinese_two_characters(db: SqliteMemoryDb) -> None:
    await db.upsert(
        INDEX,
        [
            record("service", unit(1, 0, 0), "的開發者大會，發布了一個新的服務。"),
            record("weather", unit(0, 1, 0), "今天天氣很好。"),
        ],
    )
    results = await db.search(INDEX, query_text="服務", query_vector=None)
    assert [r.record.id for r in results] == ["service"]


async def test_keyword_search_cjk_next_to_latin(db: SqliteMemoryDb) -> None:
    await db.upsert(INDEX, [record("mixed", unit(1, 0, 0), "Azure上の東京リージョン")])
    assert len(await db.search(INDEX, query_text="azure", query_vector=None)) == 1
    assert len(await db.search(INDEX, query_text="リージョン", query_vector=None)) == 1


async def test_keyword_search_cjk_case_file(db: SqliteMemoryDb, cases_dir: Path) -> None:
    text = (cases_dir / "cjk-no-spaces.md").read_text(encoding="utf-8")
    await db.upsert(
        INDEX, [record("cjk", unit(1, 0, 0), text), record("other", unit(0, 1, 0), "English only")]
    )
    results = await db.search(INDEX, query_text="開發者", query_vector=None)
    assert [r.record.payload["text"] for r in results] == [text]


async def test_keyword_search_blank_query_is_empty(tagged_db: SqliteMemoryDb) -> None:
    assert await tagged_db.search(INDEX, query_text="  ", query_vector=None) == []


# ---------------------------------------------------------------- hybrid search


async def hybrid_fixture(db: SqliteMemoryDb) -> None:
    await db.upsert(
        INDEX,
        [
            record("v1", unit(1, 0.05, 0), "general text about buildings"),
            record("v2", unit(1, 0.1, 0), "more general text"),
            record("v3", unit(1, 0.2, 0), "other general text"),
            record("code", unit(0.2, 1, 0), "error code XJ-4417 means the badge expired"),
        ],
    )


async def test_hybrid_search_returns_keyword_only_hits(db: SqliteMemoryDb) -> None:
    await hybrid_fixture(db)
    vector_only = await db.search(INDEX, query_text="", query_vector=[1, 0, 0], limit=2)
    hybrid = await db.search(INDEX, query_text="XJ-4417", query_vector=[1, 0, 0], limit=2)
    assert "code" not in [r.record.id for r in vector_only]
    assert "code" in [r.record.id for r in hybrid]


async def test_hybrid_search_relevance_is_cosine(db: SqliteMemoryDb) -> None:
    await hybrid_fixture(db)
    hybrid = await db.search(INDEX, query_text="XJ-4417", query_vector=[1, 0, 0], limit=4)
    relevance = {r.record.id: r.relevance for r in hybrid}
    assert relevance["code"] == pytest.approx(unit(0.2, 1, 0)[0], abs=1e-6)
    assert relevance["v1"] == pytest.approx(unit(1, 0.05, 0)[0], abs=1e-6)


async def test_hybrid_search_min_relevance_uses_cosine(db: SqliteMemoryDb) -> None:
    await hybrid_fixture(db)
    hybrid = await db.search(INDEX, query_text="XJ-4417", query_vector=[1, 0, 0], min_relevance=0.5)
    assert "code" not in [r.record.id for r in hybrid]
    assert len(hybrid) == 3


@pytest.mark.parametrize("fusion", ["rrf", "linear"])
async def test_hybrid_search_fusion_methods(tmp_path: Path, fusion: str) -> None:
    memory_db = SqliteMemoryDb(tmp_path / "fusion.sqlite3", fusion=fusion, vector_weight=0.3)
    await memory_db.create_index(INDEX, 3)
    await hybrid_fixture(memory_db)
    hybrid = await memory_db.search(INDEX, query_text="XJ-4417 badge", query_vector=[1, 0, 0], limit=1)
    memory_db.close()
    assert [r.record.id for r in hybrid] == ["code"]


# ---------------------------------------------------------------- writes


async def test_upsert_replaces_tags_and_text(db: SqliteMemoryDb) -> None:
    await db.upsert(INDEX, [record("doc", unit(1, 0, 0), "the old zebra text", version=["1"])])
    await db.upsert(INDEX, [record("doc", unit(0, 1, 0), "the new giraffe text", version=["2"])])

    assert await db.count(INDEX) == 1
    assert await db.count(INDEX, filters=[{"version": ["1"]}]) == 0
    assert await db.count(INDEX, filters=[{"version": ["2"]}]) == 1
    assert await db.search(INDEX, query_text="zebra", query_vector=None) == []
    assert len(await db.search(INDEX, query_text="giraffe", query_vector=None)) == 1
    stored = (await db.get_list(INDEX))[0]
    assert stored.payload["text"] == "the new giraffe text"
    assert stored.vector == pytest.approx([0, 1, 0])


async def test_upsert_round_trip(db: SqliteMemoryDb) -> None:
    original = MemoryRecord(
        id="r/1 é",
        vector=[0.5, -0.25, 1.0],
        tags={"__document_id": ["d1"], "empty": [], "colors": ["red", "white"]},
        payload={"text": "Hello", "file": "Team's Menu.pdf", "sections": [1, 2], "url": None},
    )
    await db.upsert(INDEX, [original])
    assert await db.get_list(INDEX) == [original]


async def test_upsert_missing_index(db: SqliteMemoryDb) -> None:
    with pytest.raises(NotFoundError, match="missing"):
        await db.upsert("missing", [record("a", unit(1, 0, 0))])


async def test_upsert_wrong_dimensions(db: SqliteMemoryDb) -> None:
    with pytest.raises(InvalidRequestError, match="has 2 dimensions"):
        await db.upsert(INDEX, [record("a", [1, 0])])
    assert await db.count(INDEX) == 0


async def test_upsert_rejects_nan_vector(db: SqliteMemoryDb) -> None:
    with pytest.raises(InvalidRequestError, match="finite"):
        await db.upsert(INDEX, [record("a", [1, float("nan"), 0])])


async def test_delete_by_ids(tagged_db: SqliteMemoryDb) -> None:
    await tagged_db.delete(INDEX, ["menu", "unknown"])
    assert await ids_matching(tagged_db, []) == {"report", "flag"}
    assert await tagged_db.search(INDEX, query_text="lunch", query_vector=None) == []


async def test_delete_by_filter_over_a_thousand(db: SqliteMemoryDb) -> None:
    big = [record(f"big-{i}", unit(1, i, 0), f"part {i}", __document_id=["big"]) for i in range(1200)]
    await db.upsert(INDEX, big)
    await db.upsert(INDEX, [record("small-0", unit(0, 0, 1), "kept", __document_id=["small"])])
    await db.search(INDEX, query_text="", query_vector=[1, 0, 0])

    deleted = await db.delete_by_filter(INDEX, {"__document_id": ["big"]})

    assert deleted == 1200
    assert await db.count(INDEX, filters=[{"__document_id": ["big"]}]) == 0
    assert await db.count(INDEX) == 1
    results = await db.search(INDEX, query_text="part", query_vector=[1, 0, 0], limit=10)
    assert [r.record.id for r in results] == ["small-0"]


async def test_delete_by_filter_without_conditions(tagged_db: SqliteMemoryDb) -> None:
    with pytest.raises(InvalidRequestError, match="delete_index"):
        await tagged_db.delete_by_filter(INDEX, {})
    assert await tagged_db.count(INDEX) == 3


async def test_delete_index_removes_everything(tagged_db: SqliteMemoryDb) -> None:
    await tagged_db.create_index("other", 3)
    await tagged_db.upsert("other", [record("menu", unit(1, 0, 0), "Lunch menu", colors=["red"])])

    await tagged_db.delete_index(INDEX)

    assert await tagged_db.list_indexes() == ["other"]
    assert await tagged_db.count(INDEX) == 0
    assert await tagged_db.count(INDEX, filters=[{"colors": ["red"]}]) == 0
    assert await tagged_db.search(INDEX, query_text="lunch", query_vector=[1, 0, 0]) == []
    assert len(await tagged_db.search("other", query_text="lunch", query_vector=None)) == 1


async def test_delete_index_then_recreate(tagged_db: SqliteMemoryDb) -> None:
    await tagged_db.search(INDEX, query_text="", query_vector=[1, 0, 0])
    await tagged_db.delete_index(INDEX)
    await tagged_db.create_index(INDEX, 2)
    await tagged_db.upsert(INDEX, [record("two", [0, 1])])
    results = await tagged_db.search(INDEX, query_text="", query_vector=[0, 1])
    assert [r.record.id for r in results] == ["two"]


# ---------------------------------------------------------------- indexes


async def test_index_names_normalised(db: SqliteMemoryDb) -> None:
    await db.create_index("  Docs-2024_A ", 3)
    await db.create_index("", 3)
    assert await db.list_indexes() == ["default", "docs-2024_a", INDEX]


@pytest.mark.parametrize("name", ["a b", "a/b", "a'b", "ä", "-a", "_a", "a--b", "a_-b", "a" * 129, "x;DROP"])
async def test_index_name_invalid(db: SqliteMemoryDb, name: str) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        await db.create_index(name, 3)
    assert repr(name) in str(raised.value)


async def test_create_index_other_vector_size(db: SqliteMemoryDb) -> None:
    await db.create_index(INDEX, 3)
    with pytest.raises(InvalidRequestError, match="vector size 3, not 1536"):
        await db.create_index(INDEX, 1536)


async def test_vectorless_index_sized_by_first_vector(tmp_path: Path) -> None:
    db = SqliteMemoryDb(tmp_path / "memory.sqlite3")
    try:
        await db.create_index(INDEX, 0)
        await db.upsert(INDEX, [record("plain", None, "tide tables for the harbour")])

        # With no vector stored yet, a query vector cannot be compared: keywords find the record.
        [found] = await db.search(INDEX, query_text="harbour tides", query_vector=unit(1, 0))
        assert found.record.id == "plain"
        assert found.relevance == 1.0

        await db.upsert(INDEX, [record("vec", unit(1, 0), "moon phases")])
        await db.create_index(INDEX, 0)
        with pytest.raises(InvalidRequestError, match="vector size 2, not 3"):
            await db.create_index(INDEX, 3)
        with pytest.raises(InvalidRequestError, match="has 3 dimensions"):
            await db.upsert(INDEX, [record("other", unit(1, 0, 0), "x")])
        [best, *_] = await db.search(INDEX, query_text="moon", query_vector=unit(1, 0))
        assert best.record.id == "vec"
        assert best.relevance == pytest.approx(1.0)
    finally:
        db.close()


async def test_vectorless_index_sized_by_create(tmp_path: Path) -> None:
    db = SqliteMemoryDb(tmp_path / "memory.sqlite3")
    try:
        await db.create_index(INDEX, 0)
        await db.create_index(INDEX, 4)
        with pytest.raises(InvalidRequestError, match="vector size 4, not 3"):
            await db.create_index(INDEX, 3)
    finally:
        db.close()


# ---------------------------------------------------------------- get_list, count


async def test_get_list_order_and_limit(db: SqliteMemoryDb) -> None:
    await db.upsert(INDEX, [record(f"r{i}", unit(1, 0, 0), "x", group=[str(i % 2)]) for i in range(10)])
    await db.upsert(INDEX, [record("r0", unit(0, 1, 0), "replaced", group=["0"])])

    listed = await db.get_list(INDEX, filters=[{"group": ["0"]}], limit=3)
    assert [r.id for r in listed] == ["r0", "r2", "r4"]
    assert [r.id for r in await db.get_list(INDEX, limit=0)] == [f"r{i}" for i in range(10)]


# ---------------------------------------------------------------- concurrency and persistence


async def test_concurrent_upserts_and_searches(db: SqliteMemoryDb) -> None:
    async def write(batch: int) -> None:
        records = [
            record(f"b{batch}-{i}", unit(1, batch, i), f"batch {batch}", batch=[str(batch)])
            for i in range(20)
        ]
        await db.upsert(INDEX, records)

    async def read(number: int) -> int:
        results = await db.search(INDEX, query_text="batch", query_vector=unit(1, number, 0), limit=5)
        return len(results)

    jobs = [write(batch) for batch in range(30)] + [read(number) for number in range(30)]
    await asyncio.gather(*jobs)

    assert await db.count(INDEX) == 600
    assert await db.count(INDEX, filters=[{"batch": ["7"]}]) == 20
    results = await db.search(INDEX, query_text="", query_vector=unit(1, 29, 19), limit=1)
    assert results[0].record.id == "b29-19"


async def test_persistence_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "memory.sqlite3"
    first = SqliteMemoryDb(path)
    await first.create_index(INDEX, 3)
    await first.upsert(INDEX, [record("a", unit(1, 0, 0), "persistent words", kind=["x"])])
    first.close()

    second = SqliteMemoryDb(path)
    try:
        assert await second.list_indexes() == [INDEX]
        assert await second.count(INDEX, filters=[{"kind": ["x"]}]) == 1
        assert len(await second.search(INDEX, query_text="persistent", query_vector=None)) == 1
        assert len(await second.search(INDEX, query_text="", query_vector=[1, 0, 0])) == 1
    finally:
        second.close()


WRITER_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from kernel_memory.memorydb.sqlite import SqliteMemoryDb
    from kernel_memory.models import MemoryRecord

    async def main():
        db = SqliteMemoryDb(Path(sys.argv[1]))
        for batch in range(25):
            await db.upsert("test", [
                MemoryRecord(id=f"other-{batch}-{i}", vector=[0.0, 1.0, float(i)],
                             tags={"writer": ["other"]}, payload={"text": "from the other process"})
                for i in range(20)
            ])
        db.close()

    asyncio.run(main())
    """
)


async def test_two_processes_share_one_file(db: SqliteMemoryDb) -> None:
    await db.search(INDEX, query_text="", query_vector=[1, 0, 0])
    other = await asyncio.create_subprocess_exec(
        sys.executable, "-c", WRITER_SCRIPT, str(db.path), cwd=REPO_ROOT
    )
    for batch in range(25):
        await db.upsert(
            INDEX,
            [record(f"own-{batch}-{i}", [1.0, 0.0, float(i)], "own", writer=["own"]) for i in range(20)],
        )
        await db.search(INDEX, query_text="", query_vector=[0, 1, 0], limit=3)
    assert await asyncio.wait_for(other.wait(), timeout=120) == 0

    assert await db.count(INDEX) == 1000
    assert await db.count(INDEX, filters=[{"writer": ["other"]}]) == 500
    results = await db.search(INDEX, query_text="", query_vector=[0, 1, 0], limit=3)
    assert {r.record.tags["writer"][0] for r in results} == {"other"}
    with sqlite3.connect(db.path) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        # Raises when the full-text index disagrees with itself.
        connection.execute("INSERT INTO records_fts (records_fts) VALUES ('integrity-check')")


async def test_full_text_rows_removed_with_records(db: SqliteMemoryDb) -> None:
    texts = ["nul\x00inside word", "東京タワー zebra", "café crème", "<|endoftext|> marker"]
    await db.upsert(INDEX, [record(f"t{i}", unit(1, i, 0), text) for i, text in enumerate(texts)])
    await db.upsert(INDEX, [record("t1", unit(1, 1, 0), "replaced giraffe")])
    await db.delete(INDEX, ["t0", "t2"])
    await db.delete_index(INDEX)

    with sqlite3.connect(db.path) as connection:
        connection.execute("INSERT INTO records_fts (records_fts) VALUES ('integrity-check')")
        for word in ["nul", "word", "東京", "zebra", "giraffe", "cafe", "endoftext"]:
            rows = connection.execute(
                "SELECT rowid FROM records_fts WHERE records_fts MATCH ?", (f'"{word}"',)
            ).fetchall()
            assert rows == [], word


async def test_keyword_search_drops_common_terms(db: SqliteMemoryDb) -> None:
    records = [record(f"r{i}", unit(1, i, 0), f"the report number {i}") for i in range(2100)]
    records.append(record("rare", unit(0, 0, 1), "the zeppelin report"))
    await db.upsert(INDEX, records)

    results = await db.search(INDEX, query_text="the zeppelin report", query_vector=None)
    assert [r.record.id for r in results] == ["rare"]
    assert len(await db.search(INDEX, query_text="the report", query_vector=None, limit=5)) == 5


async def test_full_text_row_count_follows_writes(db: SqliteMemoryDb) -> None:
    await db.upsert(INDEX, [record(f"r{i}", unit(1, i, 0), f"text {i}") for i in range(10)])
    await db.upsert(INDEX, [record("r0", unit(1, 0, 0), "new text"), record("r1", None, "x")])
    await db.upsert(INDEX, [MemoryRecord(id="r2", vector=None, payload={"file": "no text"})])
    await db.delete(INDEX, ["r3"])
    await db.delete_by_filter(INDEX, {"none": ["x"]})

    with sqlite3.connect(db.path) as connection:
        stored = connection.execute("SELECT value FROM meta WHERE key = 'fts_rows'").fetchone()[0]
        texts = connection.execute("SELECT COUNT(*) FROM records WHERE text IS NOT NULL").fetchone()[0]
    assert stored == texts == 8


def test_open_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not a database, " * 100, encoding="utf-8")
    with pytest.raises(PermanentError, match="notes.txt"):
        SqliteMemoryDb(path)

"""AzureSearchMemoryDb through the real azure-search-documents SDK against the fake service on 127.0.0.1."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator

import pytest

from kernel_memory.errors import InvalidRequestError, NotFoundError, ThrottledError
from kernel_memory.memorydb.azure_search import (
    AzureSearchMemoryDb,
    decode_key,
    encode_key,
    similarity_from_score,
)
from kernel_memory.memorydb.odata import tag_filter
from kernel_memory.models import MemoryRecord
from kernel_memory.settings import AzureAISearchSettings
from tests.fakes.ai_search_server import FakeAISearch, FilterSyntaxError, parse_filter

INDEX = "docs"


def _record(record_id: str, vector: list[float], text: str = "", **tags: list[str]) -> MemoryRecord:
    return MemoryRecord(id=record_id, vector=vector, tags=dict(tags), payload={"text": text})


def _unit(angle_degrees: float) -> list[float]:
    angle = math.radians(angle_degrees)
    return [math.cos(angle), math.sin(angle), 0.0]


@pytest.fixture
async def db(fake_ai_search: FakeAISearch) -> AsyncIterator[AzureSearchMemoryDb]:
    settings = AzureAISearchSettings(endpoint=fake_ai_search.url, api_key="k", index_prefix="km-")
    memory_db = AzureSearchMemoryDb(settings, retry_total=0)
    await memory_db.create_index(INDEX, 3)
    yield memory_db
    await memory_db.aclose()


# ---------------------------------------------------------------------- indexes


async def test_azure_search_list_indexes_strips_prefix(db: AzureSearchMemoryDb, fake_ai_search) -> None:
    other = AzureSearchMemoryDb(
        AzureAISearchSettings(endpoint=fake_ai_search.url, api_key="k", index_prefix="zz-")
    )
    await other.create_index(INDEX, 3)
    await other.aclose()
    await db.create_index("Second", 3)
    assert await db.list_indexes() == ["docs", "second"]


async def test_azure_search_create_index_twice(db: AzureSearchMemoryDb) -> None:
    await db.create_index(INDEX, 3)
    assert await db.list_indexes() == [INDEX]


async def test_azure_search_create_index_other_size(db: AzureSearchMemoryDb) -> None:
    with pytest.raises(InvalidRequestError, match="vector size 3, not 4"):
        await db.create_index(INDEX, 4)


async def test_azure_search_index_schema(db: AzureSearchMemoryDb, fake_ai_search) -> None:
    fields = {f["name"]: f for f in fake_ai_search.indexes["km-docs"].definition["fields"]}
    assert fields["embedding"]["dimensions"] == 3
    assert fields["tags"]["filterable"] is True
    assert fields["content"]["searchable"] is True
    assert fields["payload"]["searchable"] is False
    algorithm = fake_ai_search.indexes["km-docs"].definition["vectorSearch"]["algorithms"][0]
    assert algorithm["hnswParameters"]["metric"] == "cosine"


async def test_azure_search_create_index_race(db: AzureSearchMemoryDb, fake_ai_search) -> None:
    # Another instance creates the index between our lookup (404) and our creation (409).
    fake_ai_search.fail_next(1, status=404)
    await db.create_index(INDEX, 3)
    creations = [r for r in fake_ai_search.requests_to("/indexes") if r[0] == "POST"]
    # The fixture's creation, then ours, which met the existing index.
    assert len(creations) == 2


async def test_azure_search_create_index_race_other_size(db: AzureSearchMemoryDb, fake_ai_search) -> None:
    fake_ai_search.fail_next(1, status=404)
    with pytest.raises(InvalidRequestError, match="vector size 3, not 5"):
        await db.create_index(INDEX, 5)


async def test_azure_search_vectorless_index(db: AzureSearchMemoryDb) -> None:
    # An existing index of any vector size takes records without vectors.
    await db.create_index(INDEX, 0)
    with pytest.raises(InvalidRequestError, match="KM_EMBEDDING__DIMENSIONS"):
        await db.create_index("novectors", 0)
    assert "novectors" not in await db.list_indexes()


async def test_azure_search_delete_index(db: AzureSearchMemoryDb) -> None:
    await db.delete_index(INDEX)
    await db.delete_index(INDEX)
    assert await db.list_indexes() == []


async def test_azure_search_invalid_index_name(db: AzureSearchMemoryDb) -> None:
    with pytest.raises(InvalidRequestError):
        await db.create_index("bad name!", 3)


# ---------------------------------------------------------------------- writes


async def test_azure_search_upsert_replaces(db: AzureSearchMemoryDb) -> None:
    await db.upsert(INDEX, [_record("a", _unit(0), "first", kind=["x"])])
    await db.upsert(INDEX, [_record("a", _unit(90), "second", kind=["y"])])
    [record] = await db.get_list(INDEX)
    assert record.payload["text"] == "second"
    assert record.tags == {"kind": ["y"]}
    assert record.vector == pytest.approx(_unit(90))


async def test_azure_search_upsert_missing_index(db: AzureSearchMemoryDb) -> None:
    with pytest.raises(NotFoundError, match="km-missing"):
        await db.upsert("missing", [_record("a", _unit(0))])


async def test_azure_search_upsert_wrong_vector_size(db: AzureSearchMemoryDb) -> None:
    with pytest.raises(InvalidRequestError, match="dimension"):
        await db.upsert(INDEX, [_record("a", [1.0, 0.0])])


async def test_azure_search_ids_outside_key_alphabet(db: AzureSearchMemoryDb) -> None:
    record_id = "doc/ü.pdf#3"
    await db.upsert(INDEX, [_record(record_id, _unit(0))])
    [record] = await db.get_list(INDEX)
    assert record.id == record_id


def test_azure_search_key_round_trip() -> None:
    assert [decode_key(encode_key(i)) for i in ("abc123", "a=b", "_x", "k=1")] == [
        "abc123",
        "a=b",
        "_x",
        "k=1",
    ]


async def test_azure_search_upsert_batches(db: AzureSearchMemoryDb, fake_ai_search) -> None:
    await db.upsert(INDEX, [_record(f"r{i}", _unit(i % 90)) for i in range(2500)])
    sizes = [len(body["value"]) for _, _, body in fake_ai_search.requests_to("/docs/search.index")]
    assert sizes == [1000, 1000, 500]


async def test_azure_search_delete_by_ids(db: AzureSearchMemoryDb) -> None:
    await db.upsert(INDEX, [_record("a", _unit(0)), _record("b", _unit(10))])
    await db.delete(INDEX, ["a", "never-existed"])
    assert [r.id for r in await db.get_list(INDEX)] == ["b"]


async def test_azure_search_delete_by_filter_pages(db: AzureSearchMemoryDb) -> None:
    records = [_record(f"r{i}", _unit(i % 90), doc=["big"]) for i in range(1200)]
    await db.upsert(INDEX, records + [_record("keep", _unit(0), doc=["small"])])
    assert await db.delete_by_filter(INDEX, {"doc": ["big"]}) == 1200
    assert await db.count(INDEX) == 1


async def test_azure_search_delete_by_empty_filter(db: AzureSearchMemoryDb) -> None:
    with pytest.raises(InvalidRequestError, match="no conditions"):
        await db.delete_by_filter(INDEX, {})


# ---------------------------------------------------------------------- search


async def test_azure_search_vector_order_and_cosine(db: AzureSearchMemoryDb) -> None:
    await db.upsert(INDEX, [_record("far", _unit(60)), _record("near", _unit(10)), _record("same", _unit(0))])
    results = await db.search(INDEX, query_text="", query_vector=_unit(0))
    assert [(r.record.id, round(r.relevance, 6)) for r in results] == [
        ("same", 1.0),
        ("near", round(math.cos(math.radians(10)), 6)),
        ("far", 0.5),
    ]


def test_azure_search_score_to_similarity() -> None:
    # The service's cosine score is 1 / (1 + (1 - similarity)).
    assert similarity_from_score(1 / (2 - 0.8)) == pytest.approx(0.8)


async def test_azure_search_query_vector_wrong_size(db: AzureSearchMemoryDb) -> None:
    with pytest.raises(InvalidRequestError, match="dimensions"):
        await db.search(INDEX, query_text="", query_vector=[1.0, 0.0, 0.0, 0.0])


async def test_azure_search_min_relevance_and_limit(db: AzureSearchMemoryDb) -> None:
    await db.upsert(INDEX, [_record(f"r{a}", _unit(a)) for a in (0, 20, 40, 80)])
    results = await db.search(INDEX, query_text="", query_vector=_unit(0), min_relevance=0.7, limit=10)
    assert [r.record.id for r in results] == ["r0", "r20", "r40"]
    limited = await db.search(INDEX, query_text="", query_vector=_unit(0), limit=2)
    assert [r.record.id for r in limited] == ["r0", "r20"]


async def test_azure_search_no_limit(db: AzureSearchMemoryDb) -> None:
    await db.upsert(INDEX, [_record(f"r{i}", _unit(i)) for i in range(30)])
    assert len(await db.search(INDEX, query_text="", query_vector=_unit(0), limit=0)) == 30


async def test_azure_search_filters_and_or(db: AzureSearchMemoryDb) -> None:
    await db.upsert(
        INDEX,
        [
            _record("red-q1", _unit(0), color=["red"], period=["Q1'24"]),
            _record("red-q2", _unit(5), color=["red"], period=["Q2'24"]),
            _record("blue-q2", _unit(10), color=["blue"], period=["Q2'24"]),
        ],
    )
    filters = [{"color": ["red"], "period": ["Q1'24"]}, {"color": ["blue"]}]
    results = await db.search(INDEX, query_text="", query_vector=_unit(0), filters=filters)
    assert [r.record.id for r in results] == ["red-q1", "blue-q2"]


@pytest.mark.parametrize(
    "value",
    ["Q1'24", "colors:red,white", "Team's Menu.pdf", "x') or tags/any(s: s eq 'kind:secret", "'", "a''b"],
)
async def test_azure_search_filter_values_escaped(db: AzureSearchMemoryDb, value: str) -> None:
    await db.upsert(
        INDEX, [_record("match", _unit(0), name=[value]), _record("secret", _unit(0), kind=["secret"])]
    )
    results = await db.get_list(INDEX, filters=[{"name": [value]}])
    assert [r.id for r in results] == ["match"]


def test_azure_search_fake_rejects_unescaped_quote() -> None:
    with pytest.raises(FilterSyntaxError):
        parse_filter("tags/any(s: s eq 'period:Q1'24')")


def test_azure_search_filter_text() -> None:
    assert (
        tag_filter([(("a", "b"), ("c", "it's"))])
        == "(tags/any(s: s eq 'a:b') and tags/any(s: s eq 'c:it''s'))"
    )


async def test_azure_search_tag_key_with_colon(db: AzureSearchMemoryDb) -> None:
    with pytest.raises(InvalidRequestError, match="':'"):
        await db.upsert(INDEX, [_record("a", _unit(0), **{"a:b": ["c"]})])


async def test_azure_search_hybrid_keyword_only_hit(db: AzureSearchMemoryDb) -> None:
    await db.upsert(
        INDEX,
        [
            _record("vector-hit", _unit(0), "unrelated words"),
            _record("keyword-hit", _unit(90), "zebra facts"),
        ],
    )
    results = await db.search(INDEX, query_text="zebra", query_vector=_unit(0), limit=1)
    assert [r.record.id for r in results] == ["keyword-hit"]


async def test_azure_search_hybrid_relevance_is_cosine(db: AzureSearchMemoryDb) -> None:
    await db.upsert(INDEX, [_record("a", _unit(60), "zebra")])
    [result] = await db.search(INDEX, query_text="zebra", query_vector=_unit(0))
    assert result.relevance == pytest.approx(0.5)


async def test_azure_search_keyword_relevance(db: AzureSearchMemoryDb) -> None:
    await db.upsert(INDEX, [_record("two", _unit(0), "zebra zebra"), _record("one", _unit(0), "zebra")])
    results = await db.search(INDEX, query_text="zebra", query_vector=None)
    assert [(r.record.id, r.relevance) for r in results] == [("two", 1.0), ("one", 0.5)]


async def test_azure_search_count_with_filter(db: AzureSearchMemoryDb) -> None:
    await db.upsert(INDEX, [_record("a", _unit(0), k=["1"]), _record("b", _unit(0), k=["2"])])
    assert await db.count(INDEX, filters=[{"k": ["2"]}]) == 1


async def test_azure_search_get_list_no_limit(db: AzureSearchMemoryDb) -> None:
    await db.upsert(INDEX, [_record(f"r{i}", _unit(0)) for i in range(1100)])
    assert len(await db.get_list(INDEX, limit=0)) == 1100


# ---------------------------------------------------------------------- errors


async def test_azure_search_search_missing_index(db: AzureSearchMemoryDb) -> None:
    assert await db.search("missing", query_text="x", query_vector=_unit(0)) == []


async def test_azure_search_count_missing_index(db: AzureSearchMemoryDb) -> None:
    assert await db.count("missing") == 0


async def test_azure_search_delete_in_missing_index(db: AzureSearchMemoryDb) -> None:
    await db.delete("missing", ["a"])
    assert await db.delete_by_filter("missing", {"k": ["v"]}) == 0


async def test_azure_search_keyword_operators_escaped(db: AzureSearchMemoryDb, fake_ai_search) -> None:
    await db.upsert(INDEX, [_record("a", _unit(0), "C++ draft notes")])
    await db.search(INDEX, query_text='C++ (draft "notes', query_vector=None)
    [(_, _, body)] = fake_ai_search.requests_to("/docs/search.post.search")
    assert body["search"] == 'C\\+\\+ \\(draft \\"notes'


async def test_azure_search_throttled(db: AzureSearchMemoryDb, fake_ai_search) -> None:
    fake_ai_search.fail_next(1, status=429, headers={"Retry-After": "7"})
    with pytest.raises(ThrottledError) as caught:
        await db.count(INDEX)
    assert caught.value.retry_after == 7.0


async def test_azure_search_unavailable_is_throttled(db: AzureSearchMemoryDb, fake_ai_search) -> None:
    fake_ai_search.fail_next(1, status=503)
    with pytest.raises(ThrottledError):
        await db.count(INDEX)


async def test_azure_search_throttling_retried_by_sdk(fake_ai_search) -> None:
    settings = AzureAISearchSettings(endpoint=fake_ai_search.url, api_key="k")
    memory_db = AzureSearchMemoryDb(settings, retry_total=3)
    try:
        await memory_db.create_index(INDEX, 3)
        fake_ai_search.fail_next(2, status=429, headers={"Retry-After": "0"})
        assert await memory_db.count(INDEX) == 0
    finally:
        await memory_db.aclose()


async def test_azure_search_document_throttled(db: AzureSearchMemoryDb, fake_ai_search) -> None:
    fake_ai_search.rejected_keys["b"] = 503
    with pytest.raises(ThrottledError, match="1 of 2 records"):
        await db.upsert(INDEX, [_record("a", _unit(0)), _record("b", _unit(0))])


async def test_azure_search_document_rejected(db: AzureSearchMemoryDb, fake_ai_search) -> None:
    fake_ai_search.rejected_keys["b"] = 400
    with pytest.raises(InvalidRequestError, match="'b'"):
        await db.upsert(INDEX, [_record("a", _unit(0)), _record("b", _unit(0))])


# ---------------------------------------------------------------------- pipeline


async def test_azure_search_pipeline_import_and_search(tmp_path, fake_openai, fake_ai_search) -> None:
    from kernel_memory.memory import Memory, UploadedFile
    from kernel_memory.settings import Settings

    settings = Settings.model_validate(
        {
            "data_dir": tmp_path,
            "memory_db": {
                "type": "azure_ai_search",
                "azure_ai_search": {"endpoint": fake_ai_search.url, "api_key": "k"},
            },
            "embedding": {
                "type": "openai",
                "model": "text-embedding-3-small",
                "dimensions": 64,
                "openai": {"endpoint": fake_openai.openai_base_url, "api_key": "test-key"},
            },
        }
    )
    memory = Memory.from_settings(settings)
    try:
        await memory.import_files(
            [UploadedFile("Team's Menu.pdf.txt", b"Lunch menu with soup and bread.")],
            document_id="menu",
            tags={"period": ["Q1'24"]},
        )
        await memory.import_files(
            [UploadedFile("other.txt", b"Parking rules for visitors.")], document_id="other"
        )
        await memory.wait_for_pipeline()
        result = await memory.search("lunch menu soup", filters=[{"period": ["Q1'24"]}])
        assert [c.document_id for c in result.results] == ["menu"]

        await memory.delete_document("menu")
        await memory.wait_for_pipeline()
        stored = fake_ai_search.indexes["default"].documents.values()
        assert {tag for d in stored for tag in d["tags"] if tag.startswith("__document_id:")} == {
            "__document_id:other"
        }
    finally:
        await memory.aclose()


def test_azure_search_outlives_event_loop(fake_ai_search) -> None:
    memory_db = AzureSearchMemoryDb(AzureAISearchSettings(endpoint=fake_ai_search.url, api_key="k"))
    asyncio.run(memory_db.create_index(INDEX, 3))
    asyncio.run(memory_db.upsert(INDEX, [_record("a", _unit(0))]))

    async def count_and_close() -> int:
        try:
            return await memory_db.count(INDEX)
        finally:
            await memory_db.aclose()

    assert asyncio.run(count_and_close()) == 1

"""Embedding cache: hits, misses, deduplication and persistence, in a real SQLite file."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Sequence

import numpy as np
import pytest
from pydantic import SecretStr

from kernel_memory.ai.cache import CachedEmbeddingGenerator, EmbeddingCache, text_digest
from kernel_memory.ai.openai_adapters import OpenAIEmbeddingGenerator
from kernel_memory.settings import EmbeddingSettings, OpenAISettings


class CountingGenerator:
    """An in-process EmbeddingGenerator that records every text it is asked to embed."""

    def __init__(self, model_id: str = "counting") -> None:
        self.model_id = model_id
        self.max_input_tokens = 512
        self.dimensions = 3
        self.document_calls: list[list[str]] = []
        self.query_calls: list[str] = []

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        self.document_calls.append(list(texts))
        return [[float(len(text)), 0.1, -0.3] for text in texts]

    async def embed_query(self, text: str) -> list[float]:
        self.query_calls.append(text)
        return [float(len(text)), 1.0, 1.0]


@pytest.fixture
def cache(tmp_path):
    opened = EmbeddingCache(tmp_path / "cache" / "embeddings.sqlite3")
    yield opened
    opened.close()


async def test_cache_second_embed_zero_calls(cache):
    inner = CountingGenerator()
    cached = CachedEmbeddingGenerator(inner, cache)
    first = await cached.embed_documents(["alpha", "beta"])
    second = await cached.embed_documents(["alpha", "beta"])
    assert second == first
    assert len(inner.document_calls) == 1
    assert cached.counters.model_calls == 1
    assert cached.counters.hits == 2


async def test_cache_embeds_only_misses(cache):
    inner = CountingGenerator()
    cached = CachedEmbeddingGenerator(inner, cache)
    await cached.embed_documents(["alpha", "beta"])
    vectors = await cached.embed_documents(["beta", "gamma", "alpha"])
    assert inner.document_calls[1] == ["gamma"]
    assert [vector[0] for vector in vectors] == [4.0, 5.0, 5.0]


async def test_cache_deduplicates_misses(cache):
    inner = CountingGenerator()
    cached = CachedEmbeddingGenerator(inner, cache)
    vectors = await cached.embed_documents(["same", "other", "same"])
    assert inner.document_calls == [["same", "other"]]
    assert vectors[0] == vectors[2]
    assert cached.counters.misses == 2


async def test_cache_different_model_misses(cache):
    await CachedEmbeddingGenerator(CountingGenerator("model-a"), cache).embed_documents(["alpha"])
    inner_b = CountingGenerator("model-b")
    cached_b = CachedEmbeddingGenerator(inner_b, cache)
    await cached_b.embed_documents(["alpha"])
    assert inner_b.document_calls == [["alpha"]]
    assert cached_b.counters.hits == 0


async def test_cache_query_apart_from_documents(cache):
    inner = CountingGenerator()
    cached = CachedEmbeddingGenerator(inner, cache)
    await cached.embed_documents(["alpha"])
    query_vector = await cached.embed_query("alpha")
    assert inner.query_calls == ["alpha"]
    assert query_vector == [5.0, 1.0, 1.0]


async def test_cache_query_hit(cache):
    inner = CountingGenerator()
    cached = CachedEmbeddingGenerator(inner, cache)
    await cached.embed_query("opening hours")
    await cached.embed_query("opening hours")
    assert inner.query_calls == ["opening hours"]


async def test_cache_survives_reopen(tmp_path):
    path = tmp_path / "embeddings.sqlite3"
    first_cache = EmbeddingCache(path)
    await CachedEmbeddingGenerator(CountingGenerator(), first_cache).embed_documents(["alpha"])
    first_cache.close()

    reopened = EmbeddingCache(path)
    inner = CountingGenerator()
    await CachedEmbeddingGenerator(inner, reopened).embed_documents(["alpha"])
    reopened.close()
    assert inner.document_calls == []


async def test_cache_miss_and_hit_identical_float32(cache):
    class PreciseGenerator(CountingGenerator):
        async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
            return [[0.1234567890123, 1 / 3] for _ in texts]

    cached = CachedEmbeddingGenerator(PreciseGenerator(), cache)
    fresh = await cached.embed_documents(["alpha"])
    stored = await cached.embed_documents(["alpha"])
    assert fresh == stored
    assert fresh[0] == np.asarray([0.1234567890123, 1 / 3], dtype=np.float32).tolist()


def test_cache_stores_float32_blob(cache):
    cache.put_many("m", "document", {text_digest("alpha"): [1.0, 2.0, 3.0]})
    connection = sqlite3.connect(cache.path)
    blob, dimensions = connection.execute("SELECT vector, dimensions FROM embeddings").fetchone()
    connection.close()
    assert len(blob) == 12
    assert dimensions == 3


def test_cache_wal_mode(cache):
    connection = sqlite3.connect(cache.path)
    mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
    connection.close()
    assert mode == "wal"


def test_cache_lookup_beyond_parameter_limit(cache):
    vectors = {text_digest(f"text {n}"): [float(n)] for n in range(1500)}
    cache.put_many("m", "document", vectors)
    found = cache.get_many("m", "document", vectors.keys())
    assert len(found) == 1500


def test_cache_threads_share_one_file(cache):
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for n in range(50):
                digest = text_digest(f"{worker}-{n}")
                cache.put_many("m", "document", {digest: [float(n)]})
                assert cache.get_many("m", "document", [digest])[digest] == [float(n)]
        except (AssertionError, sqlite3.Error) as error:  # a thread cannot fail the test itself
            errors.append(error)

    threads = [threading.Thread(target=work, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert cache.count("m") == 200


async def test_cache_concurrent_coroutines(cache):
    inner = CountingGenerator()
    cached = CachedEmbeddingGenerator(inner, cache)
    results = await asyncio.gather(*(cached.embed_documents([f"text {n}", "shared"]) for n in range(10)))
    assert all(len(vectors) == 2 for vectors in results)
    assert cache.count("counting") == 11


async def test_cache_aclose_closes_file(tmp_path):
    cached = CachedEmbeddingGenerator(CountingGenerator(), EmbeddingCache(tmp_path / "embeddings.sqlite3"))
    await cached.aclose()
    with pytest.raises(sqlite3.ProgrammingError):
        cached.cache.count()


async def test_cache_reimport_makes_no_http_requests(fake_openai, cache):
    settings = EmbeddingSettings(
        type="openai",
        model="text-embedding-3-small",
        max_batch_size=2,
        openai=OpenAISettings(endpoint=fake_openai.openai_base_url, api_key=SecretStr("sk-test")),
    )
    cached = CachedEmbeddingGenerator(OpenAIEmbeddingGenerator(settings), cache)
    texts = [f"partition {n} of the handbook" for n in range(5)]
    await cached.embed_documents(texts)
    requests_after_first_import = len(fake_openai.requests_of("embeddings"))
    await cached.embed_documents(texts)
    assert requests_after_first_import == 3
    assert len(fake_openai.requests_of("embeddings")) == 3

"""Factory: the configured adapter, the cache wrapper and messages naming missing settings."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import SecretStr

from kernel_memory.ai.cache import CachedEmbeddingGenerator
from kernel_memory.ai.factory import build_embedding_generator, build_text_generator
from kernel_memory.ai.openai_adapters import (
    AzureOpenAIEmbeddingGenerator,
    AzureOpenAITextGenerator,
    OpenAIEmbeddingGenerator,
    OpenAITextGenerator,
)
from kernel_memory.errors import PermanentError
from kernel_memory.settings import (
    EmbeddingSettings,
    OpenAISettings,
    Settings,
    TextGenerationSettings,
)


def settings_with(tmp_path, **fields) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path / "data", **fields)


def openai_block(endpoint: str = "http://127.0.0.1:9/v1") -> OpenAISettings:
    return OpenAISettings(endpoint=endpoint, api_key=SecretStr("sk-test"))


def test_factory_openai_embeddings_cached(tmp_path):
    settings = settings_with(tmp_path, embedding=EmbeddingSettings(type="openai", openai=openai_block()))
    generator = build_embedding_generator(settings)
    assert isinstance(generator, CachedEmbeddingGenerator)
    assert isinstance(generator.inner, OpenAIEmbeddingGenerator)
    assert generator.cache.path == tmp_path / "data" / "embedding-cache.sqlite3"
    generator.cache.close()


def test_factory_embeddings_cache_off(tmp_path):
    embedding = EmbeddingSettings(type="openai", cache=False, openai=openai_block())
    generator = build_embedding_generator(settings_with(tmp_path, embedding=embedding))
    assert isinstance(generator, OpenAIEmbeddingGenerator)
    assert not (tmp_path / "data").exists()


def test_factory_azure_embeddings(tmp_path):
    openai = OpenAISettings(endpoint="https://x.openai.azure.com", deployment="embed", api_key=SecretStr("k"))
    embedding = EmbeddingSettings(type="azure_openai", cache=False, openai=openai)
    generator = build_embedding_generator(settings_with(tmp_path, embedding=embedding))
    assert isinstance(generator, AzureOpenAIEmbeddingGenerator)


def test_factory_azure_embeddings_missing_endpoint(tmp_path):
    embedding = EmbeddingSettings(type="azure_openai", openai=OpenAISettings(deployment="embed"))
    with pytest.raises(PermanentError, match="KM_EMBEDDING__OPENAI__ENDPOINT is not set"):
        build_embedding_generator(settings_with(tmp_path, embedding=embedding))


def test_factory_azure_identity_needs_no_key(tmp_path):
    openai = OpenAISettings(endpoint="https://x.openai.azure.com", deployment="embed", use_identity=True)
    embedding = EmbeddingSettings(type="azure_openai", cache=False, openai=openai)
    generator = build_embedding_generator(settings_with(tmp_path, embedding=embedding))
    assert generator.model_id == "azure_openai/embed"


def test_factory_openai_embeddings_missing_key(tmp_path):
    embedding = EmbeddingSettings(type="openai", openai=OpenAISettings())
    with pytest.raises(PermanentError, match="KM_EMBEDDING__OPENAI__API_KEY is not set"):
        build_embedding_generator(settings_with(tmp_path, embedding=embedding))


def test_factory_openai_text_generator(tmp_path):
    text_generation = TextGenerationSettings(type="openai", openai=openai_block())
    generator = build_text_generator(settings_with(tmp_path, text_generation=text_generation))
    assert isinstance(generator, OpenAITextGenerator)
    assert generator.extractive is False


def test_factory_azure_text_generator(tmp_path):
    openai = OpenAISettings(endpoint="https://x.openai.azure.com", deployment="chat", api_key=SecretStr("k"))
    text_generation = TextGenerationSettings(type="azure_openai", openai=openai)
    generator = build_text_generator(settings_with(tmp_path, text_generation=text_generation))
    assert isinstance(generator, AzureOpenAITextGenerator)


def test_factory_azure_text_missing_key(tmp_path):
    openai = OpenAISettings(endpoint="https://x.openai.azure.com", deployment="chat")
    text_generation = TextGenerationSettings(type="azure_openai", openai=openai)
    with pytest.raises(PermanentError, match="KM_TEXT_GENERATION__OPENAI__API_KEY is not set"):
        build_text_generator(settings_with(tmp_path, text_generation=text_generation))


def test_factory_extractive_text_generator(tmp_path):
    pytest.importorskip("kernel_memory.retrieval.extractive")
    generator = build_text_generator(settings_with(tmp_path))
    assert generator.extractive is True


def test_factory_local_embeddings(tmp_path):
    pytest.importorskip("kernel_memory.ai.local_embedding")
    embedding = EmbeddingSettings(type="local", cache=False)
    generator = build_embedding_generator(settings_with(tmp_path, embedding=embedding))
    assert generator.max_input_tokens > 0


async def test_factory_cached_embeddings_end_to_end(tmp_path, fake_openai):
    embedding = EmbeddingSettings(
        type="openai", model="text-embedding-3-small", openai=openai_block(fake_openai.openai_base_url)
    )
    settings = settings_with(tmp_path, embedding=embedding)
    first = build_embedding_generator(settings)
    await first.embed_documents(["opening hours", "closed on sundays"])
    first.cache.close()

    # A new process (here: a new generator on the same data folder) re-imports the same text.
    second = build_embedding_generator(settings)
    await second.embed_documents(["opening hours", "closed on sundays"])
    second.cache.close()
    assert len(fake_openai.requests_of("embeddings")) == 1
    assert second.counters.model_calls == 0


def test_factory_import_skips_openai_sdk():
    code = "import sys, kernel_memory.ai.factory; assert 'openai' not in sys.modules, 'openai imported'"
    completed = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr

"""Typed settings for every part of the service, read once and passed down.

Each field is also an environment variable and an Azure Functions app setting:
`KM_` followed by the field path with `__` between levels, for example
`KM_EMBEDDING__TYPE=azure_openai` or `KM_STORAGE__AZURE__ACCOUNT_NAME=mystore`.
With nothing set, everything runs on the embedded defaults: files in a local
folder, an in-process queue, SQLite as the memory DB and local models.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATA_DIR = Path(".kernel-memory")


class AzureStorageSettings(BaseModel):
    """How to reach an Azure Storage account (or Azurite).

    A connection string wins when set. Otherwise the service URIs (or the
    account name, from which they are derived) are used with `DefaultAzureCredential`.
    """

    connection_string: SecretStr | None = None
    account_name: str | None = None
    blob_service_uri: str | None = None
    queue_service_uri: str | None = None
    # Client id of a user-assigned managed identity; empty means the default chain.
    credential_client_id: str | None = None


class StorageSettings(BaseModel):
    type: Literal["local", "azure_blob"] = "local"
    # Folder for the local adapter; relative paths resolve against the data folder.
    directory: Path = Path("files")
    # Blob container holding `{index}/{documentId}/{file}` for the Azure adapter.
    container: str = "kernel-memory"
    # Container watched by the blob trigger for drop-in ingestion.
    inbox_container: str = "kernel-memory-inbox"
    azure: AzureStorageSettings = Field(default_factory=AzureStorageSettings)


class QueueSettings(BaseModel):
    type: Literal["in_process", "azure_queue"] = "in_process"
    # Prefix of the queue names: `{prefix}-extract`, `{prefix}-partition`, ...
    prefix: str = "km"
    # Must match host.json `extensions.queues.messageEncoding`.
    message_encoding: Literal["base64", "none"] = "base64"
    # Deliveries of one message before it moves to `{queue}-poison`.
    max_dequeue_count: int = Field(default=5, ge=1)
    visibility_timeout_seconds: int = Field(default=300, ge=1)
    poll_interval_seconds: float = Field(default=1.0, gt=0)
    azure: AzureStorageSettings = Field(default_factory=AzureStorageSettings)


class AzureAISearchSettings(BaseModel):
    endpoint: str | None = None
    api_key: SecretStr | None = None
    # Prepended to every index name, so several deployments can share one service.
    index_prefix: str = ""


class MemoryDbSettings(BaseModel):
    type: Literal["sqlite", "azure_ai_search"] = "sqlite"
    # SQLite database file; relative paths resolve against the data folder.
    sqlite_path: Path = Path("memory.sqlite3")
    # Weight of the vector ranking against the keyword ranking in hybrid search (0..1).
    hybrid_vector_weight: float = Field(default=0.5, ge=0, le=1)
    # How hybrid search merges the vector and keyword rankings: reciprocal rank fusion or a weighted sum.
    hybrid_fusion: Literal["rrf", "linear"] = "rrf"
    azure_ai_search: AzureAISearchSettings = Field(default_factory=AzureAISearchSettings)


class OpenAISettings(BaseModel):
    """One OpenAI or Azure OpenAI deployment."""

    endpoint: str | None = None
    api_key: SecretStr | None = None
    # Azure OpenAI only: the deployment name and the API version.
    deployment: str | None = None
    api_version: str = "2024-10-21"
    # Use `DefaultAzureCredential` instead of an API key (Azure OpenAI only).
    use_identity: bool = False


class EmbeddingSettings(BaseModel):
    type: Literal["local", "openai", "azure_openai"] = "local"
    # Model name; for `local` one of the models listed in the README.
    model: str = "multilingual-e5-small"
    # Vector size requested from models that support shortening (text-embedding-3-*).
    dimensions: int | None = None
    # Inputs per request and tokens per request (cl100k_base tokens).
    max_batch_size: int = Field(default=16, ge=1)
    max_tokens_per_request: int = Field(default=8000, ge=1)
    max_concurrency: int = Field(default=4, ge=1)
    max_retries: int = Field(default=6, ge=0)
    # Longest input the model reads, in cl100k_base tokens; 0 means the adapter's own value.
    max_input_tokens: int = Field(default=0, ge=0)
    # Cache vectors by (model, sha256 of text) so unchanged text is never embedded twice.
    cache: bool = True
    openai: OpenAISettings = Field(default_factory=OpenAISettings)


class TextGenerationSettings(BaseModel):
    type: Literal["extractive", "openai", "azure_openai"] = "extractive"
    model: str = "gpt-4o-mini"
    max_retries: int = Field(default=6, ge=0)
    # Largest prompt the model accepts, in tokens; facts are added until it is full.
    max_prompt_tokens: int = Field(default=16000, ge=256)
    openai: OpenAISettings = Field(default_factory=OpenAISettings)


class OcrSettings(BaseModel):
    type: Literal["none", "azure_document_intelligence"] = "none"
    endpoint: str | None = None
    api_key: SecretStr | None = None


class PartitioningSettings(BaseModel):
    # tiktoken encoding used to count tokens; shipped offline: cl100k_base, o200k_base.
    encoding: Literal["cl100k_base", "o200k_base"] = "cl100k_base"
    max_tokens_per_paragraph: int = Field(default=1000, ge=10)
    overlapping_tokens: int = Field(default=100, ge=0)


class RetrievalSettings(BaseModel):
    # Answer returned when no fact is relevant enough, as Kernel Memory does.
    empty_answer: str = "INFO NOT FOUND"
    # Tokens of the prompt kept for the answer itself.
    answer_tokens: int = Field(default=300, ge=1)
    # Records fetched from the memory DB before facts are selected.
    max_matches_count: int = Field(default=100, ge=1)
    # Default `minRelevance` when a request does not set one.
    min_relevance: float = Field(default=0.0, ge=0, le=1)
    temperature: float = Field(default=0.0, ge=0, le=2)
    search_limit: int = Field(default=10, ge=1)
    # Move a PDF result after the others when a better result of the same file covers
    # one of its pages, so the top results cite more distinct pages.
    diversify: bool = True


class HttpSettings(BaseModel):
    # Header carrying the API key; empty keys turn authentication off.
    api_key_header: str = "Authorization"
    api_key1: SecretStr | None = None
    api_key2: SecretStr | None = None
    # Upload size limit in bytes, checked before the body is read.
    max_upload_bytes: int = Field(default=100 * 1024 * 1024, ge=1)
    max_files_per_upload: int = Field(default=1000, ge=1)
    host: str = "127.0.0.1"
    port: int = 9001


class Settings(BaseSettings):
    """All settings. `Settings()` reads the environment and a `.env` file."""

    model_config = SettingsConfigDict(
        env_prefix="KM_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    # Root folder for everything the embedded defaults keep on disk.
    data_dir: Path = DEFAULT_DATA_DIR
    default_index: str = "default"
    # Steps run when an upload does not name its own.
    default_steps: list[str] = Field(
        default_factory=lambda: ["extract", "partition", "gen_embeddings", "save_records"]
    )
    storage: StorageSettings = Field(default_factory=StorageSettings)
    queue: QueueSettings = Field(default_factory=QueueSettings)
    memory_db: MemoryDbSettings = Field(default_factory=MemoryDbSettings)
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    text_generation: TextGenerationSettings = Field(default_factory=TextGenerationSettings)
    ocr: OcrSettings = Field(default_factory=OcrSettings)
    partitioning: PartitioningSettings = Field(default_factory=PartitioningSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)

    def resolve(self, path: Path) -> Path:
        """Return `path` as is when absolute, else inside the data folder."""
        return path if path.is_absolute() else self.data_dir / path

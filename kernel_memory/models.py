"""Data shapes: extracted content, partitions, memory records, pipeline state and the HTTP contract.

JSON names follow Kernel Memory's web service (camelCase in requests and
answers, snake_case in the pipeline status file), so its clients and stored
status files read unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

# Reserved tag names, set by the pipeline on every record; users may not set tags starting with "__".
TAG_DOCUMENT_ID = "__document_id"
TAG_FILE_ID = "__file_id"
TAG_FILE_PART = "__file_part"
TAG_FILE_TYPE = "__file_type"
TAG_PART_N = "__part_n"
TAG_SECT_N = "__sect_n"
TAG_EXECUTION_ID = "__execution_id"
TAG_SYNTHETIC = "__synth"
RESERVED_TAG_PREFIX = "__"

# Payload keys of a memory record.
PAYLOAD_TEXT = "text"
PAYLOAD_FILE = "file"
PAYLOAD_URL = "url"
PAYLOAD_LAST_UPDATE = "last_update"
PAYLOAD_SECTIONS = "sections"

STATUS_FILE_NAME = "__pipeline_status.json"


def utc_now() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------- extraction


@dataclass(frozen=True, slots=True)
class Section:
    """A numbered part of a file: a PDF page, a slide, a sheet; 1-based."""

    number: int
    text: str


@dataclass(slots=True)
class ExtractedFile:
    """Text of one file, split into its sections."""

    mime_type: str
    sections: list[Section] = field(default_factory=list)
    # Why the file produced no text on purpose (for example "OCR is not configured").
    skipped_reason: str | None = None

    @property
    def is_empty(self) -> bool:
        return not any(section.text.strip() for section in self.sections)


# ---------------------------------------------------------------- partitioning


@dataclass(frozen=True, slots=True)
class Chunk:
    """One partition of a file's text, with the section numbers it spans."""

    number: int
    text: str
    token_count: int
    # Sections (pages) the chunk's text comes from, ascending, without the overlap's.
    section_numbers: tuple[int, ...] = ()
    # Number of leading characters of `text` repeated from the end of the previous chunk.
    overlap: int = 0

    @property
    def first_section(self) -> int:
        return self.section_numbers[0] if self.section_numbers else 0


# ---------------------------------------------------------------- memory records


TagCollection = dict[str, list[str]]


@dataclass(slots=True)
class MemoryRecord:
    """A memory DB entry: one partition with its vector, tags and payload."""

    id: str
    vector: list[float] | None
    tags: TagCollection = field(default_factory=dict)
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ScoredRecord:
    record: MemoryRecord
    # 0..1, higher is more relevant; cosine similarity for pure vector search.
    relevance: float


# A filter is a tag collection. A record matches one filter when it has every (key, value) of it (AND),
# and matches a list of filters when it matches any of them (OR).
MemoryFilter = dict[str, list[str]]


# ---------------------------------------------------------------- pipeline state


class GeneratedFile(BaseModel):
    """An artifact a step wrote next to the uploaded file (extracted text, a partition, ...)."""

    model_config = ConfigDict(extra="allow")

    id: str
    name: str
    size: int = 0
    mime_type: str = "text/plain"
    artifact_type: str = "text_extraction_result"
    partition_number: int = 0
    section_number: int = 0
    # Sections (pages) the partition spans.
    section_numbers: list[int] = Field(default_factory=list)
    tags: TagCollection = Field(default_factory=dict)
    processed_by: list[str] = Field(default_factory=list)
    content_sha256: str | None = None


class FileDetails(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    name: str
    size: int = 0
    mime_type: str = ""
    tags: TagCollection = Field(default_factory=dict)
    processed_by: list[str] = Field(default_factory=list)
    generated_files: dict[str, GeneratedFile] = Field(default_factory=dict)
    # Set when the file produced no text on purpose (an image with no OCR configured).
    skipped_reason: str | None = None
    # Set when the file could not be processed (corrupt, unsupported); the document ends failed.
    error: str | None = None
    empty: bool = False


class PipelineState(BaseModel):
    """Contents of `__pipeline_status.json`: Kernel Memory's fields plus `failed` and `error`."""

    model_config = ConfigDict(extra="allow")

    index: str
    document_id: str
    execution_id: str
    steps: list[str] = Field(default_factory=list)
    remaining_steps: list[str] = Field(default_factory=list)
    completed_steps: list[str] = Field(default_factory=list)
    tags: TagCollection = Field(default_factory=dict)
    creation: datetime = Field(default_factory=utc_now)
    last_update: datetime = Field(default_factory=utc_now)
    files: list[FileDetails] = Field(default_factory=list)
    # Earlier executions whose records the next save removes.
    previous_executions_to_purge: list[str] = Field(default_factory=list)
    # Step arguments from the upload, Kernel Memory's `args` (for example "custom_partitioning_max_tokens_per_paragraph").
    args: dict[str, Any] = Field(default_factory=dict)
    upload_complete: bool = True
    # All steps ran and no file failed.
    completed: bool = False
    # Completed, and no file produced any text.
    empty: bool = False
    failed: bool = False
    error: str | None = None

    def to_status(self) -> dict[str, Any]:
        """Return the public status: Kernel Memory's `DataPipelineStatus` plus `failed` and `error`."""
        return {
            "completed": self.completed,
            "empty": self.empty,
            "failed": self.failed,
            "error": self.error,
            "index": self.index,
            "document_id": self.document_id,
            "tags": self.tags,
            "creation": self.creation.isoformat(),
            "last_update": self.last_update.isoformat(),
            "steps": self.steps,
            "remaining_steps": self.remaining_steps,
            "completed_steps": self.completed_steps,
        }


# ---------------------------------------------------------------- HTTP contract


class ApiModel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown request fields are ignored."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class Partition(ApiModel):
    text: str
    relevance: float
    partition_number: int = 0
    section_number: int = 0
    last_update: datetime = Field(default_factory=utc_now)
    tags: TagCollection = Field(default_factory=dict)
    # Beyond Kernel Memory: every page the partition spans, 1-based.
    page_numbers: list[int] = Field(default_factory=list)


class Citation(ApiModel):
    link: str = ""
    index: str = ""
    document_id: str = ""
    file_id: str = ""
    source_content_type: str = ""
    source_name: str = ""
    source_url: str | None = None
    partitions: list[Partition] = Field(default_factory=list)


class TokenUsage(ApiModel):
    timestamp: datetime = Field(default_factory=utc_now)
    service_type: str | None = None
    model_type: str | None = None
    model_name: str | None = None
    tokenizer_tokens_in: int | None = None
    tokenizer_tokens_out: int | None = None
    service_tokens_in: int | None = None
    service_tokens_out: int | None = None


class MemoryQuery(ApiModel):
    index: str | None = None
    question: str = ""
    filters: list[MemoryFilter] | None = None
    min_relevance: float = 0.0
    stream: bool = False
    args: dict[str, Any] | None = None


class SearchQuery(ApiModel):
    index: str | None = None
    query: str = ""
    filters: list[MemoryFilter] | None = None
    min_relevance: float = 0.0
    limit: int = -1
    args: dict[str, Any] | None = None


class MemoryAnswer(ApiModel):
    # "append" while streaming, "last" on the final chunk, None when not streaming.
    stream_state: str | None = None
    question: str = ""
    no_result: bool = False
    no_result_reason: str | None = None
    text: str = ""
    token_usage: list[TokenUsage] = Field(default_factory=list)
    relevant_sources: list[Citation] = Field(default_factory=list)


class SearchResult(ApiModel):
    query: str = ""
    no_result: bool = False
    results: list[Citation] = Field(default_factory=list)

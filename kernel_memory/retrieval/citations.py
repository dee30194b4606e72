"""Group scored records into Kernel Memory citations: one per file, with its partitions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from kernel_memory.models import (
    PAYLOAD_FILE,
    PAYLOAD_LAST_UPDATE,
    PAYLOAD_SECTIONS,
    PAYLOAD_TEXT,
    PAYLOAD_URL,
    TAG_DOCUMENT_ID,
    TAG_FILE_ID,
    TAG_FILE_TYPE,
    TAG_PART_N,
    TAG_SECT_N,
    Citation,
    Partition,
    ScoredRecord,
    utc_now,
)

# Formats whose sections are printed pages, so section numbers are page numbers.
PAGED_TYPES = {"application/pdf"}


def first_tag(tags: dict[str, list[str]], key: str, default: str = "") -> str:
    values = tags.get(key) or []
    return values[0] if values else default


def page_numbers(scored: ScoredRecord) -> list[int]:
    record = scored.record
    if first_tag(record.tags, TAG_FILE_TYPE) not in PAGED_TYPES:
        return []
    return [int(number) for number in record.payload.get(PAYLOAD_SECTIONS) or []]


def to_partition(scored: ScoredRecord) -> Partition:
    record = scored.record
    last_update = record.payload.get(PAYLOAD_LAST_UPDATE)
    return Partition(
        text=record.payload.get(PAYLOAD_TEXT, ""),
        relevance=float(scored.relevance),
        partition_number=int(first_tag(record.tags, TAG_PART_N, "0") or 0),
        section_number=int(first_tag(record.tags, TAG_SECT_N, "0") or 0),
        last_update=datetime.fromisoformat(last_update) if last_update else utc_now(),
        tags=record.tags,
        page_numbers=page_numbers(scored),
    )


def build_citations(index: str, results: Sequence[ScoredRecord]) -> list[Citation]:
    """Group results by file, keeping the order of each file's best result."""
    citations: dict[tuple[str, str], Citation] = {}
    for scored in results:
        tags = scored.record.tags
        document_id = first_tag(tags, TAG_DOCUMENT_ID)
        file_id = first_tag(tags, TAG_FILE_ID)
        key = (document_id, file_id)
        citation = citations.get(key)
        if citation is None:
            citation = Citation(
                link=f"{index}/{document_id}/{file_id}",
                index=index,
                document_id=document_id,
                file_id=file_id,
                source_content_type=first_tag(tags, TAG_FILE_TYPE),
                source_name=scored.record.payload.get(PAYLOAD_FILE, ""),
                source_url=scored.record.payload.get(PAYLOAD_URL),
            )
            citations[key] = citation
        citation.partitions.append(to_partition(scored))
    return list(citations.values())

"""Names, ids and (de)serialisation of the artifacts steps write next to an uploaded file."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Sequence

import numpy as np

from kernel_memory.models import Chunk, Section

EXTRACT_SUFFIX = ".extract.json"
PARTITIONS_SUFFIX = ".partitions.json"
EMBEDDINGS_SUFFIX = ".embeddings.npy"
SUMMARY_SUFFIX = ".summary.txt"

ARTIFACT_EXTRACTION = "text_extraction_result"
ARTIFACT_PARTITIONS = "text_partitions"
ARTIFACT_EMBEDDINGS = "text_embedding_vectors"
ARTIFACT_SUMMARY = "synthetic_data"


def short_hash(*parts: str, length: int = 16) -> str:
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()
    return digest[:length]


def file_id_for(file_name: str) -> str:
    """Deterministic id of an uploaded file within its document."""
    return short_hash(file_name)


def record_id_for(document_id: str, execution_id: str, file_id: str, partition_number: int) -> str:
    """Deterministic record id: a replayed step upserts the same records.

    The execution id is part of it so that a late write from an older upload
    can never replace a record of the newer one.
    """
    return short_hash(document_id, execution_id, file_id, str(partition_number), length=40)


def dump_sections(sections: Sequence[Section]) -> bytes:
    return json.dumps([{"number": s.number, "text": s.text} for s in sections], ensure_ascii=False).encode()


def load_sections(data: bytes) -> list[Section]:
    return [Section(number=item["number"], text=item["text"]) for item in json.loads(data)]


def dump_chunks(chunks: Sequence[Chunk]) -> bytes:
    items = [
        {
            "number": c.number,
            "text": c.text,
            "token_count": c.token_count,
            "section_numbers": list(c.section_numbers),
            "overlap": getattr(c, "overlap", 0),
        }
        for c in chunks
    ]
    return json.dumps(items, ensure_ascii=False).encode()


def load_chunks(data: bytes) -> list[Chunk]:
    chunks = []
    for item in json.loads(data):
        fields = {
            "number": item["number"],
            "text": item["text"],
            "token_count": item["token_count"],
            "section_numbers": tuple(item["section_numbers"]),
        }
        if "overlap" in Chunk.__dataclass_fields__:
            fields["overlap"] = item.get("overlap", 0)
        chunks.append(Chunk(**fields))
    return chunks


def dump_vectors(vectors: Sequence[Sequence[float]]) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(vectors, dtype=np.float32), allow_pickle=False)
    return buffer.getvalue()


def load_vectors(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data), allow_pickle=False)

"""Response bodies of the HTTP API that kernel_memory/models.py does not define.

Names and JSON field names follow Kernel Memory's web service. The upload
status keeps the snake_case names of the pipeline status file, as Kernel
Memory does, and adds `failed` and `error`.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from kernel_memory.models import ApiModel, TagCollection


class UploadAccepted(ApiModel):
    index: str
    document_id: str
    message: str


class DeleteAccepted(ApiModel):
    index: str
    document_id: str = ""
    message: str


class IndexDetails(ApiModel):
    name: str


class IndexCollection(ApiModel):
    results: list[IndexDetails] = Field(default_factory=list)


class DataPipelineStatus(BaseModel):
    completed: bool
    empty: bool
    # Beyond Kernel Memory: the document could not be processed, and why.
    failed: bool = False
    error: str | None = None
    index: str
    document_id: str
    tags: TagCollection = Field(default_factory=dict)
    creation: datetime
    last_update: datetime
    steps: list[str] = Field(default_factory=list)
    remaining_steps: list[str] = Field(default_factory=list)
    completed_steps: list[str] = Field(default_factory=list)


class ProblemDetails(BaseModel):
    """RFC 9457 problem details, the body of every error response."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str | None = None

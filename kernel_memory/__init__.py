"""Kernel Memory in Python: document ingestion and retrieval-augmented answers with citations.

    from kernel_memory import Memory, Settings, UploadedFile

The names load on first use, so importing the package stays cheap for the
Functions host's cold start.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "KernelMemoryError",
    "Memory",
    "MemoryAnswer",
    "PipelineState",
    "SearchResult",
    "Settings",
    "UploadedFile",
]

_EXPORTS = {
    "KernelMemoryError": "kernel_memory.errors",
    "Memory": "kernel_memory.memory",
    "MemoryAnswer": "kernel_memory.models",
    "PipelineState": "kernel_memory.models",
    "SearchResult": "kernel_memory.models",
    "Settings": "kernel_memory.settings",
    "UploadedFile": "kernel_memory.memory",
}


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'kernel_memory' has no attribute {name!r}")
    return getattr(importlib.import_module(module_name), name)

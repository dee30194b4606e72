"""Damaged copies of corpus files: extraction fails with the package's own errors, never a raw one."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import pytest

from kernel_memory.errors import KernelMemoryError
from kernel_memory.extraction import extract_bytes

# Enough variants to hit the ZIP directory, compressed parts, XML and PDF streams, yet a few seconds in all.
VARIANTS_PER_FILE = 16

DAMAGED_FILES = [
    "km-samples/mswordfile.docx",
    "km-samples/file8-data.xlsx",
    "km-samples/mspowerpointfile.pptx",
    "km-samples/file5-NASA-news.pdf",
    "km-samples/file7-submarine.html",
]


def _damaged_copies(data: bytes, *, seed: int) -> list[bytes]:
    """Return truncated copies and copies with random bytes overwritten, the same for every run."""
    generator = random.Random(seed)
    copies = [data[: generator.randrange(1, len(data))] for _ in range(VARIANTS_PER_FILE // 4)]
    while len(copies) < VARIANTS_PER_FILE:
        copy = bytearray(data)
        for _ in range(generator.choice([1, 5, 20, 100])):
            copy[generator.randrange(len(copy))] = generator.randrange(256)
        copies.append(bytes(copy))
    return copies


@pytest.mark.corpus
@pytest.mark.slow
@pytest.mark.parametrize("relative_path", DAMAGED_FILES)
def test_damaged_file_raises_only_package_errors(
    corpus_dir: Path, relative_path: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.CRITICAL)
    path = corpus_dir / relative_path
    unexpected = []
    for index, copy in enumerate(_damaged_copies(path.read_bytes(), seed=len(relative_path))):
        try:
            extract_bytes(copy, file_name=path.name)
        except KernelMemoryError:
            continue
        except Exception as error:  # noqa: BLE001 - the test lists every unexpected error type
            unexpected.append((index, type(error).__name__, str(error)[:120]))
    assert unexpected == []

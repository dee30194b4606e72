"""Building the memory DB from settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernel_memory.errors import PermanentError
from kernel_memory.memorydb.factory import build_memory_db
from kernel_memory.memorydb.sqlite import SqliteMemoryDb
from kernel_memory.settings import MemoryDbSettings, Settings


def test_factory_sqlite_path_in_data_dir(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        memory_db=MemoryDbSettings(
            sqlite_path=Path("db/memory.sqlite3"), hybrid_vector_weight=0.7, hybrid_fusion="linear"
        ),
    )
    memory_db = build_memory_db(settings)
    try:
        assert isinstance(memory_db, SqliteMemoryDb)
        assert memory_db.path == tmp_path / "data" / "db" / "memory.sqlite3"
        assert memory_db.path.is_file()
        assert memory_db.vector_weight == 0.7
        assert memory_db.fusion == "linear"
    finally:
        memory_db.close()


def test_factory_azure_ai_search_without_endpoint(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, memory_db=MemoryDbSettings(type="azure_ai_search"))
    with pytest.raises(PermanentError, match="no endpoint"):
        build_memory_db(settings)

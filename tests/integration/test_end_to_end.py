"""End to end on the embedded defaults: import real documents, then ask and search them."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import pytest_asyncio

from kernel_memory.memory import Memory, UploadedFile
from kernel_memory.settings import Settings

pytestmark = [pytest.mark.corpus, pytest.mark.slow]

CITATION = re.compile(r"\[([^\]#]+)#page=(\d+)\]")


def _settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def contoso_memory(tmp_path_factory, corpus_dir):
    """The Contoso corpus imported once, on the embedded defaults."""
    data_dir = tmp_path_factory.mktemp("contoso")
    memory = Memory.from_settings(_settings(data_dir))
    for path in sorted((corpus_dir / "contoso").iterdir()):
        if path.suffix in {".pdf", ".md"}:
            await memory.import_paths([path], index="contoso", document_id=path.stem)
    await memory.wait_for_pipeline()
    yield memory
    await memory.aclose()


def _questions(corpus_dir: Path) -> list[dict]:
    lines = (corpus_dir / "contoso" / "questions-dev.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@pytest.mark.asyncio(loop_scope="module")
async def test_contoso_documents_complete(contoso_memory, corpus_dir):
    for path in sorted((corpus_dir / "contoso").iterdir()):
        if path.suffix not in {".pdf", ".md"}:
            continue
        state = await contoso_memory.get_status("contoso", path.stem)
        assert state.completed, f"{path.name}: {state.error}"
        assert not state.empty, path.name


@pytest.mark.asyncio(loop_scope="module")
async def test_contoso_answers_cite_the_source_file(contoso_memory, corpus_dir):
    misses = []
    for item in _questions(corpus_dir):
        cited_files = {name for name, _ in CITATION.findall(item["truth"])}
        answer = await contoso_memory.ask(item["question"], index="contoso")
        assert not answer.no_result, item["question"]
        sources = {citation.source_name for citation in answer.relevant_sources}
        if not cited_files & sources:
            misses.append(item["question"])
    assert misses == []


@pytest.mark.asyncio(loop_scope="module")
async def test_contoso_answer_has_page_numbers(contoso_memory):
    answer = await contoso_memory.ask("What is the copay for Northwind Health Plus?", index="contoso")
    pages = [page for c in answer.relevant_sources for p in c.partitions for page in p.page_numbers]
    assert pages


@pytest.mark.asyncio(loop_scope="module")
async def test_contoso_answer_is_marked_extractive(contoso_memory):
    answer = await contoso_memory.ask("What does PerksPlus pay for?", index="contoso")
    assert "extractive" in answer.text.lower()


@pytest.mark.asyncio(loop_scope="module")
async def test_unknown_question_gets_info_not_found(contoso_memory):
    answer = await contoso_memory.ask(
        "What is the boiling point of tungsten?", index="contoso", min_relevance=0.95
    )
    assert answer.no_result
    assert answer.text == "INFO NOT FOUND"


@pytest.mark.asyncio(loop_scope="module")
async def test_unrelated_question_gets_info_not_found(contoso_memory):
    # Without minRelevance every question finds facts; none of them mentions bread.
    answer = await contoso_memory.ask("How do I bake sourdough bread?", index="contoso")
    assert answer.no_result
    assert answer.text == "INFO NOT FOUND"
    assert answer.relevant_sources == []


@pytest.mark.asyncio(loop_scope="module")
async def test_search_filter_by_document(contoso_memory):
    result = await contoso_memory.search(
        "copay", index="contoso", filters=[{"__document_id": ["Benefit_Options"]}]
    )
    assert result.results
    assert {c.document_id for c in result.results} == {"Benefit_Options"}


async def test_reimport_makes_no_embedding_calls(tmp_path, corpus_dir):
    source = corpus_dir / "contoso" / "Contoso_Electronics_Company_Overview.md"
    memory = Memory.from_settings(_settings(tmp_path))
    try:
        await memory.import_paths([source], document_id="overview")
        await memory.wait_for_pipeline()
        calls_after_first = memory.ctx.embedder.counters.model_calls
        await memory.import_paths([source], document_id="overview")
        await memory.wait_for_pipeline()
        assert calls_after_first > 0
        assert memory.ctx.embedder.counters.model_calls == calls_after_first
        state = await memory.get_status(None, "overview")
        assert state.completed
    finally:
        await memory.aclose()


async def test_reimport_replaces_previous_records(tmp_path):
    memory = Memory.from_settings(_settings(tmp_path))
    try:
        await memory.import_files(
            [UploadedFile("v.txt", b"The first version talks about zebras and giraffes.")], document_id="doc"
        )
        await memory.wait_for_pipeline()
        await memory.import_files([UploadedFile("v.txt", b"The second version talks about whales.")], document_id="doc")
        await memory.wait_for_pipeline()
        result = await memory.search("zebras giraffes", filters=[{"__document_id": ["doc"]}])
        texts = [p.text for c in result.results for p in c.partitions]
        assert all("zebras" not in text for text in texts)
        assert await memory.ctx.memory_db.count("default") == 1
    finally:
        await memory.aclose()


async def test_delete_document_removes_records_and_files(tmp_path):
    memory = Memory.from_settings(_settings(tmp_path))
    try:
        await memory.import_files([UploadedFile("a.txt", b"Apples are red and sweet.")], document_id="apples")
        await memory.wait_for_pipeline()
        assert await memory.ctx.memory_db.count("default") == 1
        await memory.delete_document("apples")
        await memory.wait_for_pipeline()
        assert await memory.ctx.memory_db.count("default") == 0
        assert not await memory.is_ready(None, "apples")
    finally:
        await memory.aclose()


async def test_whitespace_file_completes_empty(tmp_path, cases_dir):
    memory = Memory.from_settings(_settings(tmp_path))
    try:
        for name in ("whitespace-only.txt", "headings-only.md"):
            await memory.import_paths([cases_dir / name], document_id=name.replace(".", "-"))
        await memory.wait_for_pipeline()
        state = await memory.get_status(None, "whitespace-only-txt")
        assert state.completed
        assert state.empty
    finally:
        await memory.aclose()


async def test_corrupt_file_fails_without_affecting_others(tmp_path, cases_dir, corpus_dir):
    memory = Memory.from_settings(_settings(tmp_path))
    try:
        good = corpus_dir / "km-samples" / "file1-Wikipedia-Carbon.txt"
        await memory.import_paths([cases_dir / "corrupt.pdf", good], document_id="mixed")
        await memory.wait_for_pipeline()
        state = await memory.get_status(None, "mixed")
        assert state.failed
        assert "corrupt.pdf" in (state.error or "")
        result = await memory.search("carbon allotropes", filters=[{"__document_id": ["mixed"]}])
        assert result.results
    finally:
        await memory.aclose()


async def test_cli_data_dir_is_left_clean(tmp_path):
    # The data folder holds only what the embedded defaults need.
    memory = Memory.from_settings(_settings(tmp_path))
    await memory.import_files([UploadedFile("n.txt", b"Notes about the harbour.")], document_id="notes")
    await memory.wait_for_pipeline()
    await memory.aclose()
    assert (tmp_path / "files" / "default" / "notes" / "n.txt").is_file()
    shutil.rmtree(tmp_path)

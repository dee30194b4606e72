"""Hostile inputs through the in-process pipeline: replays, re-uploads, tags, deletes, special tokens.

Embeddings come from the real OpenAI adapter talking to the fake OpenAI server
on 127.0.0.1, which is fast and deterministic; storage and the memory DB are
the real local adapters.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from kernel_memory.errors import InvalidRequestError, NotFoundError
from kernel_memory.memory import Memory, UploadedFile
from kernel_memory.models import TAG_DOCUMENT_ID, TAG_SYNTHETIC
from kernel_memory.pipeline.orchestrator import StepOutcome, step_message
from kernel_memory.settings import Settings


def _settings(data_dir: Path, fake_openai) -> Settings:
    return Settings.model_validate(
        {
            "data_dir": data_dir,
            "embedding": {
                "type": "openai",
                "model": "text-embedding-3-small",
                "dimensions": 64,
                "openai": {"endpoint": fake_openai.openai_base_url, "api_key": "test-key"},
            },
        }
    )


@pytest.fixture
async def memory(tmp_path, fake_openai):
    memory = Memory.from_settings(_settings(tmp_path, fake_openai))
    yield memory
    await memory.aclose()


class RecordingDispatcher:
    """Keeps step messages instead of running them, so a test decides when each one runs."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, dict]] = []

    async def dispatch(self, step: str, body: dict) -> None:
        self.messages.append((step, body))


async def _run_all(memory: Memory, dispatcher: RecordingDispatcher) -> None:
    while dispatcher.messages:
        step, body = dispatcher.messages.pop(0)
        await memory.pipeline.run_step(step, body)


async def _records_of(memory: Memory, index: str, document_id: str):
    return await memory.ctx.memory_db.get_list(index, filters=[{TAG_DOCUMENT_ID: [document_id]}], limit=10_000)


async def test_special_tokens_are_ordinary_text(memory, cases_dir):
    await memory.import_paths([cases_dir / "special-tokens.txt"], document_id="special")
    await memory.wait_for_pipeline()
    assert (await memory.get_status(None, "special")).completed

    result = await memory.search("endoftext")
    texts = [p.text for c in result.results for p in c.partitions]
    assert any("<|endoftext|>" in text for text in texts)


async def test_tag_filters_match_exact_values(memory):
    await memory.import_files(
        [UploadedFile("Team's Menu.pdf.txt", b"Lunch menu with soup and bread.")],
        document_id="menu",
        tags={"colors": ["red,white"], "period": ["Q1'24"]},
    )
    await memory.import_files(
        [UploadedFile("other.txt", b"Lunch menu with soup and salad.")],
        document_id="other",
        tags={"colors": ["red"], "period": ["Q1"]},
    )
    await memory.wait_for_pipeline()

    for memory_filter in ({"colors": ["red,white"]}, {"period": ["Q1'24"]}):
        result = await memory.search("lunch menu", filters=[memory_filter])
        assert {c.document_id for c in result.results} == {"menu"}, memory_filter

    injected = await memory.search("lunch menu", filters=[{"period": ["x' OR '1'='1"]}])
    assert injected.results == []

    either = await memory.search("lunch menu", filters=[{"colors": ["red,white"]}, {"period": ["Q1"]}])
    assert {c.document_id for c in either.results} == {"menu", "other"}

    await memory.delete_document("menu")
    await memory.wait_for_pipeline()
    assert await _records_of(memory, "default", "menu") == []


@pytest.mark.parametrize("key", ["a:b", "__document_id", "__secret"])
async def test_invalid_tag_key_is_rejected(memory, key):
    with pytest.raises(InvalidRequestError):
        await memory.import_files([UploadedFile("a.txt", b"text")], tags={key: ["x"]})


async def test_too_many_tags_are_rejected(memory):
    tags = {f"key{i}": ["v" * 200] for i in range(300)}
    with pytest.raises(InvalidRequestError):
        await memory.import_files([UploadedFile("a.txt", b"text")], tags=tags)


async def test_replayed_messages_change_nothing(tmp_path, fake_openai, corpus_dir):
    dispatcher = RecordingDispatcher()
    memory = Memory.from_settings(_settings(tmp_path, fake_openai), dispatcher=dispatcher)
    try:
        await memory.import_paths([corpus_dir / "km-samples" / "file2-Wikipedia-Moon.txt"], document_id="moon")
        delivered = []
        while dispatcher.messages:
            step, body = dispatcher.messages.pop(0)
            delivered.append((step, body))
            await memory.pipeline.run_step(step, body)
        ids_before = sorted(r.id for r in await _records_of(memory, "default", "moon"))
        state_before = await memory.get_status(None, "moon")

        for step, body in delivered:
            outcome = await memory.pipeline.run_step(step, body, dequeue_count=2)
            assert outcome is StepOutcome.DUPLICATE
        dispatcher.messages.clear()

        ids_after = sorted(r.id for r in await _records_of(memory, "default", "moon"))
        state_after = await memory.get_status(None, "moon")
        assert ids_after == ids_before
        assert state_after.completed_steps == state_before.completed_steps
        assert state_after.completed
    finally:
        await memory.aclose()


async def test_reupload_during_processing_keeps_only_new_version(tmp_path, fake_openai, corpus_dir):
    dispatcher = RecordingDispatcher()
    memory = Memory.from_settings(_settings(tmp_path, fake_openai), dispatcher=dispatcher)
    try:
        v1 = (corpus_dir / "km-samples" / "file1-Wikipedia-Carbon.txt").read_bytes()
        await memory.import_files([UploadedFile("doc.txt", v1)], document_id="doc")
        # v1 runs up to and including save_records' predecessor, then v2 arrives.
        for _ in range(3):
            step, body = dispatcher.messages.pop(0)
            await memory.pipeline.run_step(step, body)
        v1_save = dispatcher.messages.pop(0)

        await memory.import_files([UploadedFile("doc.txt", b"Version two is about sailing boats.")], document_id="doc")
        await _run_all(memory, dispatcher)
        # The late v1 message arrives after v2 finished: it must be dropped.
        assert await memory.pipeline.run_step(*v1_save) is StepOutcome.STALE

        records = await _records_of(memory, "default", "doc")
        assert len(records) == 1
        assert "sailing" in records[0].payload["text"]
        result = await memory.search("allotropes of carbon diamond graphite", filters=[{TAG_DOCUMENT_ID: ["doc"]}])
        assert all("graphite" not in p.text for c in result.results for p in c.partitions)
    finally:
        await memory.aclose()


async def test_reupload_after_completion_purges_old_records(memory, corpus_dir):
    v1 = (corpus_dir / "km-samples" / "file1-Wikipedia-Carbon.txt").read_bytes()
    await memory.import_files([UploadedFile("doc.txt", v1)], document_id="doc", args={
        "custom_partitioning_max_tokens_per_paragraph": 100, "custom_partitioning_overlapping_tokens": 0,
    })
    await memory.wait_for_pipeline()
    assert len(await _records_of(memory, "default", "doc")) > 5

    await memory.import_files([UploadedFile("doc.txt", b"Short second version.")], document_id="doc")
    await memory.wait_for_pipeline()
    records = await _records_of(memory, "default", "doc")
    assert [r.payload["text"] for r in records] == ["Short second version."]


async def test_delete_document_with_over_1000_records(memory):
    text = "\n\n".join(f"Paragraph {i} describes item number {i} in detail." for i in range(1300))
    await memory.import_files(
        [UploadedFile("big.txt", text.encode())],
        document_id="big",
        args={"custom_partitioning_max_tokens_per_paragraph": 10, "custom_partitioning_overlapping_tokens": 0},
    )
    await memory.wait_for_pipeline()
    assert await memory.ctx.memory_db.count("default", filters=[{TAG_DOCUMENT_ID: ["big"]}]) > 1000

    await memory.delete_document("big")
    await memory.wait_for_pipeline()
    assert await memory.ctx.memory_db.count("default", filters=[{TAG_DOCUMENT_ID: ["big"]}]) == 0
    assert await memory.ctx.storage.list_files("default", "big") == []
    with pytest.raises(NotFoundError):
        await memory.get_status(None, "big")


async def test_step_that_always_fails_ends_failed(memory, fake_openai):
    fake_openai.fail_next(1000, status=500)
    memory.pipeline.ctx.settings.queue.max_dequeue_count = 2
    await memory.import_files([UploadedFile("a.txt", b"Some text to embed.")], document_id="doomed")
    await asyncio.wait_for(memory.wait_for_pipeline(), timeout=120)
    state = await memory.get_status(None, "doomed")
    assert state.failed
    assert "gen_embeddings" in (state.error or "")
    assert not state.completed


async def test_unsupported_and_empty_files_are_rejected(memory, cases_dir):
    from kernel_memory.errors import EmptyFileError, UnsupportedContentError

    for name in ("unsupported.xyz", "legacy.doc"):
        with pytest.raises(UnsupportedContentError, match="unsupported file type"):
            await memory.import_paths([cases_dir / name], document_id="x")
    with pytest.raises(EmptyFileError, match="file is empty"):
        await memory.import_paths([cases_dir / "zero-bytes.txt"], document_id="x")
    with pytest.raises(NotFoundError):
        await memory.get_status(None, "x")


async def test_pipeline_message_is_a_small_pointer(tmp_path, fake_openai):
    dispatcher = RecordingDispatcher()
    memory = Memory.from_settings(_settings(tmp_path, fake_openai), dispatcher=dispatcher)
    try:
        files = [UploadedFile(f"file{i}.txt", f"content {i}".encode()) for i in range(500)]
        state = await memory.import_files(files, document_id="many", tags={f"k{i}": ["v" * 100] for i in range(90)})
        _, body = dispatcher.messages[0]
        assert body == step_message(state)
        assert len(str(body).encode()) < 512
    finally:
        await memory.aclose()


async def test_pipeline_without_embeddings_searchable(memory, fake_openai):
    await memory.import_files(
        [UploadedFile("moon.txt", b"The Moon is Earth's only natural satellite.")],
        index="plain",
        document_id="moon",
        steps=["extract", "partition", "save_records"],
    )
    await memory.wait_for_pipeline()
    state = await memory.get_status("plain", "moon")
    assert state.completed and not state.failed, state.error
    [stored] = await _records_of(memory, "plain", "moon")
    assert stored.vector is None

    result = await memory.search("natural satellite", index="plain")
    assert [c.document_id for c in result.results] == ["moon"]

    # A later upload with embeddings lands in the same index, sized by the model.
    await memory.import_files([UploadedFile("sun.txt", b"The Sun is a star.")], index="plain", document_id="sun")
    await memory.wait_for_pipeline()
    assert (await memory.get_status("plain", "sun")).completed
    [with_vector] = await _records_of(memory, "plain", "sun")
    assert len(with_vector.vector) == 64


async def test_summarize_step_adds_summary_record(memory):
    text = "Carbon is element six. " + " ".join(f"Fact number {i} about carbon." for i in range(400))
    await memory.import_files(
        [UploadedFile("carbon.txt", text.encode())],
        document_id="carbon",
        tags={"topic": ["science"]},
        steps=["extract", "partition", "gen_embeddings", "save_records", "summarize"],
    )
    await memory.wait_for_pipeline()
    assert (await memory.get_status(None, "carbon")).completed

    records = await _records_of(memory, "default", "carbon")
    summaries = [r for r in records if r.tags.get(TAG_SYNTHETIC) == ["summary"]]
    assert len(summaries) == 1
    [summary] = summaries
    # Without a language model the summary is the document's opening text.
    assert summary.payload["text"].startswith("Carbon is element six.")
    assert len(summary.payload["text"]) < len(text)
    assert summary.tags["topic"] == ["science"]
    assert summary.payload["sections"] == []
    assert len(summary.vector) == 64
    assert len(records) > len(summaries)

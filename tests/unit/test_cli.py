"""The command line: exit codes, JSON output and argument checks, on a throwaway data folder."""

from __future__ import annotations

import json

import pytest

from kernel_memory import cli


@pytest.fixture
def data_dir(tmp_path, monkeypatch, fake_openai):
    """Point the CLI's settings at a temporary folder and the fake OpenAI embedder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("KM_EMBEDDING__TYPE", "openai")
    monkeypatch.setenv("KM_EMBEDDING__MODEL", "text-embedding-3-small")
    monkeypatch.setenv("KM_EMBEDDING__DIMENSIONS", "32")
    monkeypatch.setenv("KM_EMBEDDING__OPENAI__ENDPOINT", fake_openai.openai_base_url)
    monkeypatch.setenv("KM_EMBEDDING__OPENAI__API_KEY", "test-key")
    return tmp_path


def _write(folder, name, content: bytes):
    path = folder / name
    path.write_bytes(content)
    return str(path)


def test_cli_import_then_status_and_search(data_dir, capsys):
    path = _write(data_dir, "notes.txt", b"The harbour opens at six in the morning.")
    assert cli.main(["import", path, "--tag", "team:docs"]) == cli.EXIT_OK
    capsys.readouterr()

    assert cli.main(["--json", "status", "notes.txt"]) == cli.EXIT_OK
    status = json.loads(capsys.readouterr().out)
    assert status["completed"] is True

    assert cli.main(["--json", "search", "harbour", "--filter", "team:docs"]) == cli.EXIT_OK
    result = json.loads(capsys.readouterr().out)
    assert result["results"][0]["documentId"] == "notes.txt"


def test_cli_unsupported_file_exit_code(data_dir, cases_dir):
    assert cli.main(["import", str(cases_dir / "unsupported.xyz")]) == cli.EXIT_UNSUPPORTED


def test_cli_empty_file_exit_code(data_dir, cases_dir):
    assert cli.main(["import", str(cases_dir / "zero-bytes.txt")]) == cli.EXIT_INVALID


def test_cli_corrupt_file_exit_code(data_dir, cases_dir):
    assert cli.main(["import", str(cases_dir / "corrupt.pdf")]) == cli.EXIT_FAILED


def test_cli_unknown_document_exit_code(data_dir):
    assert cli.main(["status", "missing-doc"]) == cli.EXIT_NOT_FOUND


def test_cli_delete_rejects_id_with_all(data_dir):
    assert cli.main(["delete", "some-doc", "--all"]) == cli.EXIT_INVALID


def test_cli_reserved_tag_key_exit_code(data_dir):
    path = _write(data_dir, "a.txt", b"text")
    assert cli.main(["import", path, "--tag", "__secret:x"]) == cli.EXIT_INVALID


def test_cli_ask_without_documents_prints_info_not_found(data_dir, capsys):
    assert cli.main(["--json", "ask", "What time does the harbour open?"]) == cli.EXIT_FAILED
    answer = json.loads(capsys.readouterr().out)
    assert answer["noResult"] is True
    assert answer["text"] == "INFO NOT FOUND"


def test_cli_delete_document(data_dir, capsys):
    path = _write(data_dir, "gone.txt", b"Temporary text.")
    assert cli.main(["import", path]) == cli.EXIT_OK
    assert cli.main(["delete", "gone.txt"]) == cli.EXIT_OK
    assert cli.main(["status", "gone.txt"]) == cli.EXIT_NOT_FOUND


def test_cli_indexes_json(data_dir, capsys):
    path = _write(data_dir, "a.txt", b"Some text for the index.")
    assert cli.main(["import", path, "--index", "team-a"]) == cli.EXIT_OK
    capsys.readouterr()
    assert cli.main(["--json", "indexes"]) == cli.EXIT_OK
    names = [item["name"] for item in json.loads(capsys.readouterr().out)["results"]]
    assert "team-a" in names

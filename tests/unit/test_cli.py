"""The command line: exit codes, JSON output and argument checks, on a throwaway data folder."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

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


def test_cli_file_name_reaches_derived_id(data_dir, capsys):
    path = _write(data_dir, "Team's Menu.txt", b"Lunch menu for the quarter.")
    assert cli.main(["import", path]) == cli.EXIT_OK
    assert "(document Team-s-Menu.txt)" in capsys.readouterr().err

    assert cli.main(["status", "Team's Menu.txt", "--json"]) == cli.EXIT_OK
    assert json.loads(capsys.readouterr().out)["document_id"] == "Team-s-Menu.txt"
    assert cli.main(["delete", "Team's Menu.txt"]) == cli.EXIT_OK
    assert cli.main(["status", "Team-s-Menu.txt"]) == cli.EXIT_NOT_FOUND


def test_cli_missing_path_is_not_found(data_dir, capsys):
    assert cli.main(["import", str(data_dir / "no-such-folder")]) == cli.EXIT_NOT_FOUND
    assert "path not found" in capsys.readouterr().err


def test_cli_json_option_after_command(data_dir, capsys):
    assert cli.main(["ask", "What time does the harbour open?", "--json"]) == cli.EXIT_FAILED
    assert json.loads(capsys.readouterr().out)["noResult"] is True
    assert cli.main(["--json", "indexes", "-v"]) == cli.EXIT_OK
    assert "results" in json.loads(capsys.readouterr().out)


def test_cli_failed_file_logs_no_warning(data_dir, cases_dir):
    # A new process, because logging is configured once per process and pytest configures it first.
    command = [sys.executable, "-m", "kernel_memory", "import", str(cases_dir / "corrupt.pdf")]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert completed.returncode == cli.EXIT_FAILED
    assert "corrupt.pdf: failed" in completed.stderr
    assert "WARNING" not in completed.stderr


def test_cli_stream_prints_no_answer_reason(data_dir, capsys):
    path = _write(data_dir, "notes.txt", b"The harbour opens at six in the morning.")
    assert cli.main(["import", path]) == cli.EXIT_OK
    capsys.readouterr()
    assert cli.main(["ask", "How do I bake sourdough bread?", "--stream"]) == cli.EXIT_FAILED
    captured = capsys.readouterr()
    assert captured.out.strip() == "INFO NOT FOUND"
    assert "(The facts found do not answer the question)" in captured.err


def test_cli_closed_pipe_ends_quietly(data_dir):
    command = [sys.executable, "-m", "kernel_memory", "--json", "indexes"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # The reader is gone long before the interpreter starts and prints.
    process.stdout.close()
    _, err = process.communicate(timeout=120)
    assert b"Traceback" not in err
    assert process.returncode == -signal.SIGPIPE

"""Command line: `kernel-memory import | ask | search | status | delete | indexes | serve`.

Exit codes: 0 success, 1 a document failed or no answer was found, 2 invalid
input or usage, 3 not found, 4 unsupported file type, 5 a service is unavailable.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kernel_memory.errors import (
    InvalidRequestError,
    KernelMemoryError,
    NotFoundError,
    TransientError,
    UnsupportedContentError,
)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_NOT_FOUND = 3
EXIT_UNSUPPORTED = 4
EXIT_UNAVAILABLE = 5


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kernel-memory",
        description="Import documents, then search them and ask questions with cited answers.",
    )
    # The options go before or after the command. SUPPRESS keeps a subcommand's default
    # from overwriting a value given before the command.
    common = argparse.ArgumentParser(add_help=False)
    for options in (parser, common):
        default = False if options is parser else argparse.SUPPRESS
        options.add_argument(
            "--json", action="store_true", default=default, help="print machine-readable JSON instead of text"
        )
        options.add_argument(
            "-v", "--verbose", action="store_true", default=default, help="log each pipeline step to stderr"
        )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add_command(name: str, help_text: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=help_text, parents=[common])

    importing = add_command("import", "import files and folders (each file is one document)")
    importing.add_argument("paths", nargs="+", type=Path, help="files, or folders to import recursively")
    importing.add_argument("--index", help="index to import into (default: the configured default index)")
    importing.add_argument(
        "--document-id", help="import all the given files as one document with this id"
    )
    importing.add_argument(
        "--tag", action="append", default=[], metavar="KEY:VALUE", help="tag every record (repeatable)"
    )
    importing.add_argument(
        "--steps", help="comma-separated pipeline steps (default: extract,partition,gen_embeddings,save_records)"
    )

    for name, help_text in (("ask", "answer a question from the imported documents"), ("search", "find passages")):
        sub = add_command(name, help_text)
        sub.add_argument("text", help="the question or the search query")
        sub.add_argument("--index", help="index to query")
        sub.add_argument(
            "--filter",
            action="append",
            default=[],
            metavar="KEY:VALUE",
            help="only use records with this tag; several --filter options must all match",
        )
        sub.add_argument("--min-relevance", type=float, help="ignore results below this relevance (0 to 1)")
        if name == "ask":
            sub.add_argument("--stream", action="store_true", help="print the answer as it is written")
        else:
            sub.add_argument("--limit", type=int, default=-1, help="maximum number of results (default: the configured search limit)")

    status = add_command("status", "show a document's pipeline status")
    status.add_argument("document_id", help="the document id (for a file imported without --document-id: its name)")
    status.add_argument("--index")

    delete = add_command("delete", "delete a document, or a whole index with --all")
    delete.add_argument("document_id", nargs="?", help="the document to delete")
    delete.add_argument("--index")
    delete.add_argument("--all", action="store_true", help="delete the whole index")

    add_command("indexes", "list the indexes")

    serve = add_command("serve", "serve the HTTP API (and the queue worker) on this machine")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 9001)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Without --verbose only errors are logged: a failed file's warning would repeat
    # what the command prints about it, and pypdf warns about every repairable flaw.
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.ERROR,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if args.command != "serve" and hasattr(signal, "SIGPIPE"):
        # Output piped into `head` ends quietly when the reader stops, as with other command line tools.
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    try:
        if args.command == "serve":
            from kernel_memory.cli_serve import serve
            from kernel_memory.settings import Settings

            settings = Settings()
            if args.host:
                settings.http.host = args.host
            if args.port:
                settings.http.port = args.port
            serve(settings)
            return EXIT_OK
        return asyncio.run(_run(args))
    except KernelMemoryError as error:
        return _report_error(error, as_json=args.json)
    except KeyboardInterrupt:
        return 130


def _report_error(error: KernelMemoryError, *, as_json: bool) -> int:
    code = EXIT_FAILED
    if isinstance(error, UnsupportedContentError):
        code = EXIT_UNSUPPORTED
    elif isinstance(error, NotFoundError):
        code = EXIT_NOT_FOUND
    elif isinstance(error, InvalidRequestError):
        code = EXIT_INVALID
    elif isinstance(error, TransientError):
        code = EXIT_UNAVAILABLE
    if as_json:
        print(json.dumps({"error": error.title, "detail": str(error), "status": error.status_code}))
    else:
        print(f"error: {error}", file=sys.stderr)
    return code


async def _run(args: argparse.Namespace) -> int:
    from kernel_memory.memory import Memory

    memory = Memory.from_settings()
    try:
        handler = {
            "import": _import,
            "ask": _ask,
            "search": _search,
            "status": _status,
            "delete": _delete,
            "indexes": _indexes,
        }[args.command]
        return await handler(memory, args)
    finally:
        await memory.aclose()


def _collect_files(paths: Sequence[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")))
        elif path.is_file():
            files.append(path)
        else:
            raise NotFoundError(f"path not found: {path}: check the file or folder name")
    return files


async def _import(memory, args: argparse.Namespace) -> int:
    from kernel_memory.validation import document_id_from_file_name, parse_tags

    tags = parse_tags(args.tag)
    steps = [step for step in args.steps.split(",")] if args.steps else None
    files = _collect_files(args.paths)
    if not files:
        raise InvalidRequestError("no files to import in the given paths")

    batches = [(args.document_id, files)] if args.document_id else [
        (document_id_from_file_name(path.name), [path]) for path in files
    ]
    results: list[dict[str, Any]] = []
    progress = _Progress(len(batches), enabled=not args.json)
    exit_code = EXIT_OK
    for document_id, paths in batches:
        if len(paths) > 1:
            label = f"{document_id} ({len(paths)} files)"
        elif document_id != paths[0].name:
            label = f"{paths[0].name} (document {document_id})"
        else:
            label = paths[0].name
        progress.show(f"importing {label}")
        try:
            state = await memory.import_paths(
                paths, index=args.index, document_id=document_id, tags=tags, steps=steps
            )
        except (UnsupportedContentError, InvalidRequestError) as error:
            # One bad file does not stop a folder import. It is reported, and the exit code gives the reason.
            results.append({"documentId": document_id, "files": [p.name for p in paths], "error": str(error)})
            if exit_code == EXIT_OK:
                exit_code = EXIT_UNSUPPORTED if isinstance(error, UnsupportedContentError) else EXIT_INVALID
            progress.advance(f"{label}: {error}")
            continue
        await memory.wait_for_pipeline()
        state = await memory.get_status(state.index, state.document_id)
        results.append(state.to_status())
        if state.failed and exit_code == EXIT_OK:
            exit_code = EXIT_FAILED
        progress.advance(f"{label}: {_state_summary(state)}")
    progress.close()

    if args.json:
        print(json.dumps(results, indent=2))
    return exit_code


def _state_summary(state) -> str:
    if state.failed:
        return f"failed: {state.error}"
    if state.empty:
        return "completed, no text found"
    return "completed" if state.completed else "in progress"


async def _ask(memory, args: argparse.Namespace) -> int:
    filters = _filters(args.filter)
    if args.stream and not args.json:
        no_result = False
        sources = []
        reason = None
        async for piece in memory.ask_stream(
            args.text, index=args.index, filters=filters, min_relevance=args.min_relevance
        ):
            print(piece.text, end="", flush=True)
            no_result = no_result or piece.no_result
            reason = reason or piece.no_result_reason
            sources.extend(piece.relevant_sources)
        print()
        if no_result and reason:
            print(f"({reason})", file=sys.stderr)
        _print_sources(sources)
        return EXIT_FAILED if no_result else EXIT_OK

    answer = await memory.ask(args.text, index=args.index, filters=filters, min_relevance=args.min_relevance)
    if args.json:
        print(answer.model_dump_json(by_alias=True, indent=2))
    else:
        print(answer.text)
        if answer.no_result and answer.no_result_reason:
            print(f"({answer.no_result_reason})", file=sys.stderr)
        _print_sources(answer.relevant_sources)
    return EXIT_FAILED if answer.no_result else EXIT_OK


def _print_sources(citations) -> None:
    if not citations:
        return
    print("\nSources:")
    for citation in citations:
        pages = sorted({page for partition in citation.partitions for page in partition.page_numbers})
        where = f", pages {', '.join(map(str, pages))}" if pages else ""
        best = max((partition.relevance for partition in citation.partitions), default=0.0)
        print(f"- {citation.source_name} (document {citation.document_id}{where}; relevance {best:.2f})")


async def _search(memory, args: argparse.Namespace) -> int:
    result = await memory.search(
        args.text,
        index=args.index,
        filters=_filters(args.filter),
        min_relevance=args.min_relevance,
        limit=args.limit,
    )
    if args.json:
        print(result.model_dump_json(by_alias=True, indent=2))
        return EXIT_OK if result.results else EXIT_FAILED
    if not result.results:
        print("No results.", file=sys.stderr)
        return EXIT_FAILED
    for citation in result.results:
        for partition in citation.partitions:
            pages = f" pages {','.join(map(str, partition.page_numbers))}" if partition.page_numbers else ""
            print(f"[{partition.relevance:.3f}] {citation.source_name}{pages} (document {citation.document_id})")
            print("    " + " ".join(partition.text.split())[:300])
    return EXIT_OK


def _document_id(value: str) -> str:
    """Return the document id; a file name the id rules reject gives the id its import derived from it."""
    from kernel_memory.validation import clean_document_id, document_id_from_file_name

    try:
        return clean_document_id(value)
    except InvalidRequestError:
        derived = document_id_from_file_name(value)
        if derived == value:
            raise
        return derived


async def _status(memory, args: argparse.Namespace) -> int:
    state = await memory.get_status(args.index, _document_id(args.document_id))
    if args.json:
        print(json.dumps(state.to_status(), indent=2))
    else:
        print(f"{state.index}/{state.document_id}: {_state_summary(state)}")
        print(f"  completed steps: {', '.join(state.completed_steps) or '-'}")
        print(f"  remaining steps: {', '.join(state.remaining_steps) or '-'}")
        for file in state.files:
            note = file.error or file.skipped_reason or ("no text" if file.empty else "")
            print(f"  {file.name} ({file.mime_type}, {file.size} bytes){': ' + note if note else ''}")
    return EXIT_FAILED if state.failed else EXIT_OK


async def _delete(memory, args: argparse.Namespace) -> int:
    if args.all and args.document_id:
        raise InvalidRequestError("pass a document id or --all, not both")
    if args.all:
        await memory.delete_index(args.index)
        target = f"index {memory.index_name(args.index)}"
    elif args.document_id:
        document_id = _document_id(args.document_id)
        await memory.get_status(args.index, document_id)
        await memory.delete_document(document_id, index=args.index)
        target = f"document {document_id}"
    else:
        raise InvalidRequestError("name a document id to delete, or pass --all to delete the whole index")
    await memory.wait_for_pipeline()
    if args.json:
        print(json.dumps({"deleted": target}))
    else:
        print(f"deleted {target}")
    return EXIT_OK


async def _indexes(memory, args: argparse.Namespace) -> int:
    names = await memory.list_indexes()
    if args.json:
        print(json.dumps({"results": [{"name": name} for name in names]}))
    else:
        for name in names:
            print(name)
    return EXIT_OK


def _filters(pairs: Sequence[str]) -> list[dict[str, list[str]]] | None:
    if not pairs:
        return None
    memory_filter: dict[str, list[str]] = {}
    for pair in pairs:
        key, separator, value = pair.partition(":")
        if not separator:
            raise InvalidRequestError(f"filter '{pair}' is invalid: write it as key:value")
        memory_filter.setdefault(key.strip(), []).append(value.strip())
    return [memory_filter]


class _Progress:
    """A one-line progress bar on stderr, shown only on a terminal."""

    def __init__(self, total: int, *, enabled: bool) -> None:
        self._total = total
        self._done = 0
        self._tty = enabled and sys.stderr.isatty()
        self._enabled = enabled

    def show(self, message: str) -> None:
        if self._tty:
            width = 24
            filled = width * self._done // max(self._total, 1)
            bar = "#" * filled + "-" * (width - filled)
            sys.stderr.write(f"\r[{bar}] {self._done}/{self._total} {message[:60]:<60}")
            sys.stderr.flush()

    def advance(self, message: str) -> None:
        self._done += 1
        if self._tty:
            sys.stderr.write("\r" + " " * 100 + "\r")
        if self._enabled:
            print(f"[{self._done}/{self._total}] {message}", file=sys.stderr)
        self.show("")

    def close(self) -> None:
        if self._tty:
            sys.stderr.write("\r" + " " * 100 + "\r")
            sys.stderr.flush()


if __name__ == "__main__":
    raise SystemExit(main())

"""A fake Azure AI Search service on 127.0.0.1 for tests that use the real `azure-search-documents` SDK.

It serves enough of the REST API (any api-version) for the memory DB adapter:

- indexes: `PUT`, `GET`, `DELETE /indexes('NAME')` (and `/indexes/NAME`), `GET` and `POST /indexes`
- documents: `POST /indexes('NAME')/docs/search.index` with `mergeOrUpload`, `upload`, `merge`
  and `delete` actions (200, or 207 with per-key status); `GET /indexes('NAME')/docs/$count`
- search: `POST /indexes('NAME')/docs/search.post.search` with `filter`, `select`, `top`,
  `skip` and `count`. A `search` text matches a document containing any of its words and
  scores by occurrences. `vectorQueries` of kind "vector" rank by brute-force cosine, scored
  1 / (2 - cosine) as the service scores the cosine metric. Text and vectors together are
  fused by reciprocal rank fusion with k 60.

Filters: only the OData subset the adapter writes is understood, `F/any(x: x eq 'literal')`
joined with `and` / `or` and parentheses, literals with quotes doubled. Anything else,
such as an unescaped quote, gets a 400 as the service would answer, so an escaping bug fails.

Not covered: paging with `@search.nextPageParameters`, semantic ranking, analyzers (the
keyword match is lowercase words), the near-real-time refresh delay, and key authentication
beyond requiring an `api-key` or `Authorization` header.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

_INDEX_PATH = re.compile(r"^/indexes(?:\('(?P<quoted>[^']+)'\)|/(?P<plain>[^/()]+))(?P<rest>/.*)?$")
_WORD = re.compile(r"\w+", re.UNICODE)
_RRF_K = 60


class FilterSyntaxError(ValueError):
    """A filter outside the supported subset; the fake responds with 400."""


@dataclass
class Fault:
    status: int
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class SearchIndexState:
    definition: dict[str, Any]
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def key_field(self) -> str:
        return next(f["name"] for f in self.definition["fields"] if f.get("key"))

    def field(self, name: str) -> dict[str, Any] | None:
        return next((f for f in self.definition["fields"] if f["name"] == name), None)


class FakeAISearch:
    """State and scripted faults of the fake service; `url` is its endpoint."""

    def __init__(self) -> None:
        self.indexes: dict[str, SearchIndexState] = {}
        self.requests: list[tuple[str, str, Any]] = []
        self._faults: list[Fault] = []
        # Document key -> status of a scripted per-document failure in indexing requests.
        self.rejected_keys: dict[str, int] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fail_next(self, count: int, *, status: int, headers: dict[str, str] | None = None) -> None:
        """Fail the next `count` requests with `status` and `headers`."""
        with self._lock:
            self._faults.extend(Fault(status, dict(headers or {})) for _ in range(count))

    def requests_to(self, suffix: str) -> list[tuple[str, str, Any]]:
        """Recorded (method, path, body) of the requests whose path ends with `suffix`."""
        return [request for request in self.requests if request[1].endswith(suffix)]

    def next_fault(self) -> Fault | None:
        with self._lock:
            return self._faults.pop(0) if self._faults else None

    # ------------------------------------------------------------------ operations

    def handle(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        self.requests.append((method, path, body))
        if path == "/indexes":
            if method == "GET":
                return 200, {"value": [state.definition for state in self.indexes.values()]}
            if method == "POST":
                return self._create(body["name"], body, only_new=True)
        match = _INDEX_PATH.match(path)
        if match is None:
            return 404, _error("NotFound", f"no route for {method} {path}")
        name = unquote(match["quoted"] or match["plain"])
        rest = match["rest"] or ""
        if rest == "":
            return self._index_operation(method, name, body)
        with self._lock:
            state = self.indexes.get(name)
        if state is None:
            return 404, _error("ResourceNotFound", f"The index '{name}' for service 'fake' was not found.")
        if rest == "/docs/search.index" and method == "POST":
            return self._index_documents(state, body)
        if rest == "/docs/search.post.search" and method == "POST":
            return self._search(state, body)
        if rest == "/docs/$count" and method == "GET":
            return 200, len(state.documents)
        return 404, _error("NotFound", f"no route for {method} {path}")

    def _index_operation(self, method: str, name: str, body: Any) -> tuple[int, Any]:
        if method == "PUT":
            return self._create(name, body, only_new=False)
        with self._lock:
            state = self.indexes.get(name)
            if state is not None and method == "DELETE":
                del self.indexes[name]
                return 204, None
        if state is None:
            return 404, _error("ResourceNotFound", f"The index '{name}' for service 'fake' was not found.")
        if method == "GET":
            return 200, state.definition
        return 405, _error("MethodNotAllowed", method)

    def _create(self, name: str, body: dict[str, Any], *, only_new: bool) -> tuple[int, Any]:
        definition = dict(body, name=name)
        definition["@odata.etag"] = '"0x1"'
        with self._lock:
            existing = self.indexes.get(name)
            if existing is not None and only_new:
                return 409, _error(
                    "ResourceNameAlreadyInUse", f"Cannot create index '{name}' because it already exists."
                )
            if existing is not None:
                existing.definition = definition
                return 200, definition
            self.indexes[name] = SearchIndexState(definition)
        return 201, definition

    def _index_documents(self, state: SearchIndexState, body: dict[str, Any]) -> tuple[int, Any]:
        key_field = state.key_field
        results = []
        for action in body["value"]:
            kind = action.get("@search.action", "upload")
            document = {k: v for k, v in action.items() if k != "@search.action"}
            key = document.get(key_field)
            error = _validate(state, document)
            if error:
                return 400, _error("InvalidDocument", error)
            with self._lock:
                if key in self.rejected_keys:
                    results.append(_result(key, False, self.rejected_keys[key], "scripted document failure"))
                elif kind == "delete":
                    state.documents.pop(key, None)
                    results.append(_result(key, True, 200))
                elif kind == "merge" and key not in state.documents:
                    results.append(_result(key, False, 404, "Document not found."))
                else:
                    current = state.documents.get(key, {}) if kind in ("merge", "mergeOrUpload") else {}
                    state.documents[key] = {**current, **document}
                    results.append(_result(key, True, 201 if not current else 200))
        status = 200 if all(r["status"] for r in results) else 207
        return status, {"value": results}

    def _search(self, state: SearchIndexState, body: dict[str, Any]) -> tuple[int, Any]:
        try:
            predicate = parse_filter(body["filter"]) if body.get("filter") else (lambda document: True)
        except FilterSyntaxError as error:
            return 400, _error(
                "InvalidRequestParameter", f"Invalid expression: {error}\r\nParameter name: $filter"
            )
        with self._lock:
            documents = [dict(d) for d in state.documents.values() if predicate(d)]

        text = (body.get("search") or "*").strip()
        keyword: list[tuple[dict[str, Any], float]] | None = None
        if text != "*":
            keyword = _keyword_ranking(state, documents, text)

        vector_ranking: list[tuple[dict[str, Any], float]] | None = None
        for query in body.get("vectorQueries") or []:
            if query.get("kind") != "vector":
                return 400, _error("InvalidRequestParameter", f"vector query kind {query.get('kind')!r}")
            field_def = state.field(query["fields"])
            if field_def is None or len(query["vector"]) != field_def.get("dimensions"):
                return 400, _error("InvalidRequestParameter", "vector field or dimensions do not match")
            vector_ranking = _vector_ranking(
                documents, query["fields"], query["vector"], int(query.get("k") or 50)
            )

        if vector_ranking is not None and keyword is not None:
            ranked = _fuse(vector_ranking, keyword)
        elif vector_ranking is not None:
            ranked = vector_ranking
        elif keyword is not None:
            ranked = keyword
        else:
            ranked = [(d, 1.0) for d in documents]

        skip = int(body.get("skip") or 0)
        top = int(body["top"]) if body.get("top") is not None else 50
        page = ranked[skip : skip + top]
        selected = [f.strip() for f in body["select"].split(",")] if body.get("select") else None
        value = []
        for document, score in page:
            fields = {k: v for k, v in document.items() if selected is None or k in selected}
            value.append({"@search.score": score, **fields})
        response: dict[str, Any] = {"value": value}
        if body.get("count"):
            response["@odata.count"] = len(ranked)
        return 200, response


def _validate(state: SearchIndexState, document: dict[str, Any]) -> str | None:
    for name, value in document.items():
        field_def = state.field(name)
        if field_def is None:
            return f"The property '{name}' does not exist on type 'search.documentFields'."
        dimensions = field_def.get("dimensions")
        if dimensions and value is not None and len(value) != dimensions:
            return f"The vector field '{name}' must have dimension {dimensions}, got {len(value)}."
    return None


def _result(key: str, status: bool, code: int, message: str | None = None) -> dict[str, Any]:
    return {"key": key, "status": status, "errorMessage": message, "statusCode": code}


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _keyword_ranking(
    state: SearchIndexState, documents: list[dict[str, Any]], text: str
) -> list[tuple[dict[str, Any], float]]:
    terms = {w.lower() for w in _WORD.findall(text)}
    searchable = [
        f["name"] for f in state.definition["fields"] if f.get("searchable") and f["type"] == "Edm.String"
    ]
    ranked = []
    for document in documents:
        words = [w.lower() for name in searchable for w in _WORD.findall(document.get(name) or "")]
        hits = sum(1 for w in words if w in terms)
        if hits:
            ranked.append((document, float(hits)))
    ranked.sort(key=lambda item: -item[1])
    return ranked


def _vector_ranking(
    documents: list[dict[str, Any]], field_name: str, vector: list[float], k: int
) -> list[tuple[dict[str, Any], float]]:
    ranked = []
    for document in documents:
        stored = document.get(field_name)
        if stored is None:
            continue
        cosine = _cosine(vector, stored)
        # The service's score for the cosine metric: 1 / (1 + (1 - cosine)).
        ranked.append((document, 1.0 / (2.0 - cosine)))
    ranked.sort(key=lambda item: -item[1])
    return ranked[:k]


def _cosine(left: list[float], right: list[float]) -> float:
    dot = sum(a * b for a, b in zip(left, right))
    norms = math.sqrt(sum(a * a for a in left)) * math.sqrt(sum(b * b for b in right))
    return dot / norms if norms else 0.0


def _fuse(*rankings: list[tuple[dict[str, Any], float]]) -> list[tuple[dict[str, Any], float]]:
    scores: dict[int, float] = {}
    by_id: dict[int, dict[str, Any]] = {}
    for ranking in rankings:
        for rank, (document, _) in enumerate(ranking, start=1):
            by_id[id(document)] = document
            scores[id(document)] = scores.get(id(document), 0.0) + 1.0 / (_RRF_K + rank)
    return sorted(((by_id[i], s) for i, s in scores.items()), key=lambda item: -item[1])


# -------------------------------------------------------------------------- filters


_TOKEN = re.compile(r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<word>[A-Za-z_][A-Za-z0-9_/]*)|(?P<punct>[():]))")


def _tokens(text: str) -> list[str]:
    tokens, position = [], 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None:
            raise FilterSyntaxError(
                f"unexpected text at position {position}: {text[position : position + 20]!r}"
            )
        tokens.append(match.group(match.lastgroup or "punct"))
        position = match.end()
    return tokens


def parse_filter(text: str) -> Any:
    """Compile a filter of the supported subset into a predicate on a document."""
    tokens = _tokens(text)
    position = 0

    def peek() -> str | None:
        return tokens[position] if position < len(tokens) else None

    def take(expected: str | None = None) -> str:
        nonlocal position
        token = peek()
        if token is None or (expected is not None and token != expected):
            raise FilterSyntaxError(f"expected {expected or 'more'} at token {position}, found {token!r}")
        position += 1
        return token

    def parse_or() -> Any:
        terms = [parse_and()]
        while peek() == "or":
            take()
            terms.append(parse_and())
        return lambda d: any(t(d) for t in terms)

    def parse_and() -> Any:
        terms = [parse_term()]
        while peek() == "and":
            take()
            terms.append(parse_term())
        return lambda d: all(t(d) for t in terms)

    def parse_term() -> Any:
        if peek() == "(":
            take("(")
            inner = parse_or()
            take(")")
            return inner
        path = take()
        if not path.endswith("/any"):
            raise FilterSyntaxError(f"unsupported expression {path!r}")
        collection = path[: -len("/any")]
        take("(")
        variable = take()
        take(":")
        take(variable)
        take("eq")
        literal = take()
        if not (literal.startswith("'") and literal.endswith("'") and len(literal) >= 2):
            raise FilterSyntaxError(f"expected a string literal, found {literal!r}")
        value = literal[1:-1].replace("''", "'")
        take(")")
        return lambda d: value in (d.get(collection) or [])

    predicate = parse_or()
    if position != len(tokens):
        raise FilterSyntaxError(f"unexpected {tokens[position]!r} at token {position}")
    return predicate


# -------------------------------------------------------------------------- HTTP


def _handler_for(service: FakeAISearch) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _respond(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            data = b"" if body is None else json.dumps(body).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json; odata.metadata=minimal")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            if data:
                self.wfile.write(data)

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if not (self.headers.get("api-key") or self.headers.get("Authorization")):
                self._respond(403, _error("Forbidden", "no api-key header"))
                return
            fault = service.next_fault()
            if fault is not None:
                self._respond(fault.status, _error("Throttled", "scripted failure"), fault.headers)
                return
            body = json.loads(raw) if raw else None
            status, response = service.handle(self.command, unquote(urlsplit(self.path).path), body)
            self._respond(status, response)

        do_GET = do_PUT = do_POST = do_DELETE = _serve

    return Handler


@pytest.fixture
def fake_ai_search() -> Iterator[FakeAISearch]:
    """A fake Azure AI Search service, started for one test and stopped after it."""
    service = FakeAISearch()
    service.start()
    try:
        yield service
    finally:
        service.stop()

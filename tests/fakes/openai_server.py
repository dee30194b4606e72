"""A fake OpenAI / Azure OpenAI service on 127.0.0.1 for tests that use the real `openai` SDK.

It serves enough of the REST protocol for embeddings and chat completions:

- `POST /v1/embeddings` and `POST /openai/deployments/{deployment}/embeddings?api-version=...`
- `POST /v1/chat/completions` and `POST /openai/deployments/{deployment}/chat/completions?api-version=...`,
  as JSON or as server-sent events (`data: {...}` events ending with `data: [DONE]`)

Vectors are a hashed bag of words, normalised to unit length: deterministic, and
texts that share words get a higher cosine similarity, so retrieval tests can rank.
Every request is recorded (path, query, headers, JSON body), and faults can be
scripted: a status with headers for the next N requests, and a delay per request.

Tests use the `fake_openai` fixture, which tests/conftest.py registers as a plugin:

    def test_something(fake_openai):
        fake_openai.fail_next(2, status=429, headers={"retry-after-ms": "10"})
        ... KM_EMBEDDING__OPENAI__ENDPOINT = fake_openai.openai_base_url ...
        assert len(fake_openai.requests_of("embeddings")) == 3
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

import numpy as np
import pytest

_AZURE_PATH = re.compile(
    r"^/openai/deployments/(?P<deployment>[^/]+)/(?P<operation>embeddings|chat/completions)$"
)
_OPENAI_PATH = re.compile(r"^/v1/(?P<operation>embeddings|chat/completions)$")
_WORD = re.compile(r"\w+", re.UNICODE)

# OpenAI rejects embedding requests with more inputs than this.
MAX_EMBEDDING_INPUTS = 2048


@dataclass
class RecordedRequest:
    """One request as the fake service received it."""

    method: str
    path: str
    query: dict[str, str]
    # Header names in lower case.
    headers: dict[str, str]
    body: Any
    # "embeddings", "chat" or "other".
    kind: str
    # The Azure deployment from the path; None on the OpenAI paths.
    deployment: str | None

    @property
    def inputs(self) -> list[str]:
        """The texts of an embeddings request."""
        value = self.body.get("input") if isinstance(self.body, dict) else None
        if isinstance(value, str):
            return [value]
        return list(value or [])


@dataclass
class Fault:
    """A scripted error response for one matching request."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    message: str = "scripted failure"
    code: str | None = None
    # Only requests of this kind ("embeddings" or "chat") consume the fault; None matches all.
    kind: str | None = None


def fake_embedding(text: str, dimensions: int) -> list[float]:
    """Return a deterministic unit vector: a signed, hashed bag of lower-cased words."""
    vector = np.zeros(dimensions, dtype=np.float64)
    words = _WORD.findall(text.lower()) or [text]
    for word in words:
        digest = hashlib.sha256(word.encode("utf-8")).digest()
        index = int.from_bytes(digest[:4], "little") % dimensions
        sign = 1.0 if digest[4] & 1 else -1.0
        vector[index] += sign
    norm = float(np.linalg.norm(vector))
    if norm == 0.0:
        vector[0] = 1.0
        norm = 1.0
    return (vector / norm).tolist()


def _default_reply(messages: list[dict[str, Any]]) -> str:
    return "This is the fake model's answer."


def split_reply(text: str) -> list[str]:
    """Split a reply into streaming pieces: each word with the space before it."""
    return re.findall(r"\s*\S+", text) or [text]


class FakeOpenAIServer:
    """The fake service; start it with `start()` or use the `fake_openai` fixture.

    Args:
        default_dimensions: Vector size when a request does not send `dimensions`.
        api_key: When set, requests must carry it (`api-key` or `Authorization: Bearer`)
            or get a 401; a bearer token is accepted whatever its value otherwise.
    """

    def __init__(self, *, default_dimensions: int = 1536, api_key: str | None = None) -> None:
        self.default_dimensions = default_dimensions
        self.api_key = api_key
        # Seconds each request waits before its response is sent (for concurrency and time-out tests).
        self.response_delay = 0.0
        # Seconds between two streamed pieces.
        self.stream_delay = 0.0
        # The chat answer for a list of messages, and how it is cut into streamed pieces.
        self.chat_reply: Callable[[list[dict[str, Any]]], str] = _default_reply
        self.split_reply: Callable[[str], list[str]] = split_reply
        # Finish reason of chat answers ("stop", "length", "content_filter").
        self.finish_reason = "stop"
        # When set, a stream breaks off (the connection closes) after this many pieces.
        self.stream_break_after: int | None = None

        self.requests: list[RecordedRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- life cycle ----

    def start(self) -> FakeOpenAIServer:
        handler = type("BoundHandler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        # A short poll interval keeps `stop()` (which waits for one poll) fast.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-openai", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ---- addresses ----

    @property
    def port(self) -> int:
        assert self._server is not None, "the fake OpenAI server is not started"
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """Root URL, which is also the Azure OpenAI endpoint."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """Base URL for the OpenAI client (`base_url` plus `/v1`)."""
        return f"{self.base_url}/v1"

    @property
    def azure_endpoint(self) -> str:
        return self.base_url

    # ---- scripting and inspection ----

    def fail_next(
        self,
        count: int = 1,
        *,
        status: int = 429,
        headers: dict[str, str] | None = None,
        message: str = "scripted failure",
        code: str | None = None,
        kind: str | None = None,
    ) -> None:
        """Answer the next `count` matching requests with `status`, `headers` and an error body."""
        with self._lock:
            for _ in range(count):
                self._faults.append(Fault(status, dict(headers or {}), message, code, kind))

    def requests_of(self, kind: str) -> list[RecordedRequest]:
        """The recorded requests of one kind ("embeddings" or "chat"), in arrival order."""
        with self._lock:
            return [request for request in self.requests if request.kind == kind]

    def reset(self) -> None:
        """Forget recorded requests, pending faults and the in-flight maximum."""
        with self._lock:
            self.requests.clear()
            self._faults.clear()
            self.max_in_flight = 0

    def _record(self, request: RecordedRequest) -> Fault | None:
        with self._lock:
            self.requests.append(request)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            for index, fault in enumerate(self._faults):
                if fault.kind is None or fault.kind == request.kind:
                    return self._faults.pop(index)
        return None

    def _finish(self) -> None:
        with self._lock:
            self.in_flight -= 1


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAIServer]:
    """A started fake OpenAI / Azure OpenAI service, stopped after the test."""
    server = FakeOpenAIServer().start()
    try:
        yield server
    finally:
        server.stop()


class _Handler(BaseHTTPRequestHandler):
    fake: FakeOpenAIServer
    protocol_version = "HTTP/1.1"
    server_version = "FakeOpenAI/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        # Quiet: the request log is the record, and stderr noise hides test output.
        pass

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        query = dict(parse_qsl(url.query))
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = raw.decode("utf-8", "replace")

        kind, deployment = _route(url.path)
        request = RecordedRequest(
            method="POST",
            path=url.path,
            query=query,
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
            kind=kind,
            deployment=deployment,
        )
        fault = self.fake._record(request)
        try:
            if self.fake.response_delay:
                time.sleep(self.fake.response_delay)
            self._respond(request, fault)
        except (BrokenPipeError, ConnectionResetError):
            # The client closed the connection (a time-out test), so no response can be sent.
            self.close_connection = True
        finally:
            self.fake._finish()

    def _respond(self, request: RecordedRequest, fault: Fault | None) -> None:
        if request.kind == "other":
            self._send_error(404, f"no route for {request.path}", code="404")
            return
        if request.deployment is not None and "api-version" not in request.query:
            self._send_error(
                404, "Resource not found: the api-version query parameter is missing", code="404"
            )
            return
        if not self._authorized(request):
            self._send_error(401, "Incorrect API key provided.", code="invalid_api_key")
            return
        if fault is not None:
            self._send_error(fault.status, fault.message, code=fault.code, headers=fault.headers)
            return
        if not isinstance(request.body, dict):
            self._send_error(400, "the request body must be a JSON object", code="invalid_request_error")
            return
        if request.kind == "embeddings":
            self._embeddings(request.body)
        else:
            self._chat(request.body)

    def _authorized(self, request: RecordedRequest) -> bool:
        api_key = request.headers.get("api-key")
        authorization = request.headers.get("authorization", "")
        bearer = authorization[len("Bearer ") :] if authorization.startswith("Bearer ") else None
        if self.fake.api_key is None:
            return bool(api_key or bearer)
        if request.deployment is not None and bearer is not None and api_key is None:
            return True  # Entra ID token: its value is not checked here
        return self.fake.api_key in (api_key, bearer)

    def _embeddings(self, body: dict[str, Any]) -> None:
        inputs = body.get("input")
        texts = [inputs] if isinstance(inputs, str) else inputs
        if not isinstance(texts, list) or not texts:
            self._send_error(400, "'$.input' is invalid: send a string or a non-empty array", code=None)
            return
        if len(texts) > MAX_EMBEDDING_INPUTS:
            self._send_error(400, f"'$.input' has more than {MAX_EMBEDDING_INPUTS} items", code=None)
            return
        if any(not isinstance(text, str) or text == "" for text in texts):
            self._send_error(400, "'$.input' is invalid: an input is empty or not a string", code=None)
            return

        dimensions = int(body.get("dimensions") or self.fake.default_dimensions)
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        for index, text in enumerate(texts):
            vector = fake_embedding(text, dimensions)
            embedding: Any = (
                base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode("ascii")
                if as_base64
                else vector
            )
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        tokens = sum(len(_WORD.findall(text)) or 1 for text in texts)
        self._send_json(
            200,
            {
                "object": "list",
                "data": data,
                "model": body.get("model", "fake-embedding"),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )

    def _chat(self, body: dict[str, Any]) -> None:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            self._send_error(400, "'messages' must be a non-empty array", code=None)
            return
        reply = self.fake.chat_reply(messages)
        model = body.get("model", "fake-chat")
        created = int(time.time())
        if body.get("stream"):
            self._stream_chat(reply, model=model, created=created)
            return
        self._send_json(
            200,
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": reply},
                        "finish_reason": self.fake.finish_reason,
                    }
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            },
        )

    def _stream_chat(self, reply: str, *, model: str, created: int) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def chunk(choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
            return {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": choices,
                **extra,
            }

        # Azure OpenAI opens with the prompt filter results in a chunk without choices.
        self._send_event(chunk([], prompt_filter_results=[{"prompt_index": 0, "content_filter_results": {}}]))
        self._send_event(
            chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
        )
        for number, piece in enumerate(self.fake.split_reply(reply)):
            if number == self.fake.stream_break_after:
                self.close_connection = True
                return
            if self.fake.stream_delay:
                time.sleep(self.fake.stream_delay)
            self._send_event(chunk([{"index": 0, "delta": {"content": piece}, "finish_reason": None}]))
        self._send_event(chunk([{"index": 0, "delta": {}, "finish_reason": self.fake.finish_reason}]))
        self._send_chunk(b"data: [DONE]\n\n")
        self._send_chunk(b"")

    def _send_event(self, payload: dict[str, Any]) -> None:
        self._send_chunk(b"data: " + json.dumps(payload).encode("utf-8") + b"\n\n")

    def _send_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode("ascii") + data + b"\r\n")
        self.wfile.flush()

    def _send_error(
        self, status: int, message: str, *, code: str | None, headers: dict[str, str] | None = None
    ) -> None:
        error_type = "invalid_request_error" if status < 500 else "server_error"
        body = {"error": {"message": message, "type": error_type, "param": None, "code": code}}
        self._send_json(status, body, headers=headers)

    def _send_json(self, status: int, payload: Any, *, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def _route(path: str) -> tuple[str, str | None]:
    for pattern in (_AZURE_PATH, _OPENAI_PATH):
        match = pattern.match(path)
        if match:
            kind = "embeddings" if match.group("operation") == "embeddings" else "chat"
            deployment = match.groupdict().get("deployment")
            return kind, deployment
    return "other", None

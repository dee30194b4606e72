"""OpenAPI 3.1 document of the HTTP API, generated from the pydantic models the handlers use.

The document is committed as kernel_memory/http/openapi.json and served at
`/openapi.json`; a unit test regenerates it and compares. To refresh it:

    python -m kernel_memory.http.openapi > kernel_memory/http/openapi.json
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from kernel_memory.http.schemas import (
    DataPipelineStatus,
    DeleteAccepted,
    IndexCollection,
    ProblemDetails,
    UploadAccepted,
)
from kernel_memory.models import MemoryAnswer, MemoryQuery, SearchQuery, SearchResult

_REF = "#/components/schemas/{model}"

_REQUEST_MODELS: tuple[type[BaseModel], ...] = (MemoryQuery, SearchQuery)
_RESPONSE_MODELS: tuple[type[BaseModel], ...] = (
    MemoryAnswer,
    SearchResult,
    DataPipelineStatus,
    UploadAccepted,
    DeleteAccepted,
    IndexCollection,
    ProblemDetails,
)


def build_openapi_document() -> dict[str, Any]:
    pairs: list[tuple[type[BaseModel], JsonSchemaMode]] = [(model, "validation") for model in _REQUEST_MODELS]
    pairs += [(model, "serialization") for model in _RESPONSE_MODELS]
    _, definitions = models_json_schema(pairs, by_alias=True, ref_template=_REF)
    schemas = dict(sorted(definitions["$defs"].items()))

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Kernel Memory (Python)",
            "version": "1.0",
            "description": (
                "Document ingestion and answers with citations, compatible with Kernel Memory's web service. "
                "Beyond it: the upload status has `failed` and `error`, partitions carry `pageNumbers`, "
                "and errors are RFC 9457 problem details."
            ),
        },
        "paths": _paths(),
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "apiKey": {
                    "type": "apiKey",
                    "in": "header",
                    # The header name is configurable (KM_HTTP__API_KEY_HEADER); this is the default.
                    "name": "Authorization",
                }
            },
        },
        "security": [{"apiKey": []}],
    }


def _paths() -> dict[str, Any]:
    return {
        "/": {"get": _operation("ServiceStatus", "Show the service status and uptime.", ok=_json_string())},
        "/health": {
            "get": {
                **_operation(
                    "ServiceHealth",
                    "Tell whether the service is healthy; needs no API key.",
                    ok=_json_string(),
                ),
                "security": [],
            }
        },
        "/upload": {
            "post": _operation(
                "UploadDocument",
                "Upload one or more files as a document; the ingestion pipeline runs in the background.",
                request=_upload_form(),
                ok=None,
                status=202,
                body=_ref("UploadAccepted"),
                headers={
                    "Location": {"description": "URL of the upload status", "schema": {"type": "string"}}
                },
                errors=(400, 413, 415, 429, 503),
            )
        },
        "/upload-status": {
            "get": _operation(
                "CheckDocumentStatus",
                "Show the pipeline status of a document.",
                parameters=[_query("index"), _query("documentId", required=True)],
                body=_ref("DataPipelineStatus"),
                errors=(400, 404),
            )
        },
        "/ask": {
            "post": _operation(
                "AnswerQuestion",
                "Answer a question from the stored memories, with citations. With `stream: true` the answer "
                "arrives as server-sent events, one MemoryAnswer per `data:` line, ending with `data: [DONE]`.",
                request={"application/json": {"schema": _ref("MemoryQuery")}},
                body=_ref("MemoryAnswer"),
                extra_content={"text/event-stream": {"schema": {"type": "string"}}},
                errors=(400, 404, 429, 503),
            )
        },
        "/search": {
            "post": _operation(
                "SearchDocumentSnippets",
                "Search the stored memories for relevant partitions.",
                request={"application/json": {"schema": _ref("SearchQuery")}},
                body=_ref("SearchResult"),
                errors=(400, 404, 429, 503),
            )
        },
        "/documents": {
            "delete": _operation(
                "DeleteDocumentById",
                "Delete a document, its records and its files; runs in the background.",
                parameters=[_query("index"), _query("documentId", required=True)],
                status=202,
                body=_ref("DeleteAccepted"),
                errors=(400,),
            )
        },
        "/indexes": {
            "get": _operation("ListIndexes", "List the indexes.", body=_ref("IndexCollection")),
            "delete": _operation(
                "DeleteIndexByName",
                "Delete an index and every document in it; runs in the background.",
                parameters=[_query("index")],
                status=202,
                body=_ref("DeleteAccepted"),
                errors=(400,),
            ),
        },
        "/download": {
            "get": _operation(
                "DownloadFile",
                "Download an uploaded file with its exact bytes.",
                parameters=[
                    _query("index"),
                    _query("documentId", required=True),
                    _query("filename", required=True),
                ],
                ok={"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
                errors=(400, 404),
            )
        },
        "/openapi.json": {
            "get": _operation("OpenApiDocument", "This document.", ok={"application/json": {}})
        },
    }


def _operation(
    operation_id: str,
    summary: str,
    *,
    parameters: list[dict[str, Any]] | None = None,
    request: dict[str, Any] | None = None,
    ok: dict[str, Any] | None = None,
    status: int = 200,
    body: dict[str, Any] | None = None,
    extra_content: dict[str, Any] | None = None,
    headers: dict[str, Any] | None = None,
    errors: tuple[int, ...] = (),
) -> dict[str, Any]:
    content = dict(ok or {})
    if body is not None:
        content["application/json"] = {"schema": body}
    content.update(extra_content or {})
    success: dict[str, Any] = {"description": "Accepted" if status == 202 else "OK", "content": content}
    if headers:
        success["headers"] = headers

    responses: dict[str, Any] = {str(status): success}
    for code in sorted({401, 403, *errors}):
        responses[str(code)] = {
            "description": _ERROR_DESCRIPTIONS[code],
            "content": {"application/problem+json": {"schema": _ref("ProblemDetails")}},
        }

    operation: dict[str, Any] = {"operationId": operation_id, "summary": summary}
    if parameters:
        operation["parameters"] = parameters
    if request is not None:
        operation["requestBody"] = {"required": True, "content": request}
    operation["responses"] = responses
    return operation


_ERROR_DESCRIPTIONS = {
    400: "Invalid request",
    401: "Missing API key",
    403: "Invalid API key",
    404: "Not found",
    413: "Request body over the size limit",
    415: "Unsupported file or body type",
    429: "A model service is throttling; see Retry-After",
    503: "A dependency is unavailable; see Retry-After",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(model=name)}


def _query(name: str, *, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": {"type": "string"}}


def _json_string() -> dict[str, Any]:
    return {"application/json": {"schema": {"type": "string"}}}


def _upload_form() -> dict[str, Any]:
    return {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {
                    "index": {"type": "string"},
                    "documentId": {"type": "string"},
                    "tags": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "`key:value`; the value may contain ':' and ','",
                    },
                    "steps": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "repeated, or one comma separated value",
                    },
                    "args": {"type": "string", "description": "JSON object of step arguments"},
                    "files": {
                        "type": "array",
                        "items": {"type": "string", "format": "binary"},
                        "description": "every part with a file name is a file, whatever its field name",
                    },
                },
            },
            "encoding": {"tags": {"explode": True}, "steps": {"explode": True}},
        }
    }


def render_openapi_document() -> str:
    return json.dumps(build_openapi_document(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    print(render_openapi_document(), end="")

"""Compatibility with Kernel Memory's published OpenAPI document.

Every route it lists exists here, every request shape it describes is
accepted, and every response body validates against its schema. Its schemas
forbid unknown properties, so the fields we add are allowed explicitly, by
name, in EXTRA_FIELDS.
"""

from __future__ import annotations

import copy
import json

import httpx
import jsonschema
import pytest
from referencing import Registry, Resource

from kernel_memory.http.app import create_app
from kernel_memory.http.routes import ROUTES
from tests.service_support import build_memory, local_settings, wait_for_status

# Fields our responses add to Kernel Memory's schemas.
EXTRA_FIELDS = {
    "DataPipelineStatus": ("failed", "error"),
    "Partition": ("pageNumbers",),
}

TEXT = b"PerksPlus pays for gym memberships, yoga classes and ski passes. Northwind covers eye exams."


@pytest.fixture(scope="module")
def contract(contracts_dir):
    document = json.loads((contracts_dir / "kernel-memory-openapi.json").read_text(encoding="utf-8"))
    schemas = copy.deepcopy(document["components"]["schemas"])
    for name, fields in EXTRA_FIELDS.items():
        for field in fields:
            schemas[name]["properties"].setdefault(field, {})
    document["components"]["schemas"] = schemas
    return document


def _openapi30_to_jsonschema(node):
    """Turn OpenAPI 3.0 `nullable: true` into a JSON Schema type union, recursively."""
    if isinstance(node, dict):
        node = {key: _openapi30_to_jsonschema(value) for key, value in node.items()}
        if node.pop("nullable", False):
            if "type" in node:
                node["type"] = [node["type"], "null"]
            elif "$ref" in node:
                node = {"anyOf": [{"$ref": node.pop("$ref")}, {"type": "null"}], **node}
        return node
    if isinstance(node, list):
        return [_openapi30_to_jsonschema(item) for item in node]
    return node


@pytest.fixture(scope="module")
def validate(contract):
    converted = _openapi30_to_jsonschema(contract)
    registry = Registry().with_resource("urn:contract", Resource.opaque(converted))

    def check(name, body):
        schema = {"$ref": f"urn:contract#/components/schemas/{name}"}
        jsonschema.Draft202012Validator(schema, registry=registry).validate(body)

    return check


@pytest.fixture
async def client(tmp_path):
    settings = local_settings(tmp_path)
    memory = build_memory(settings)
    app = create_app(settings, memory=memory)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        yield http
    await memory.aclose()


async def _ingest(client, document_id="perks", **form):
    response = await client.post(
        "/upload",
        files=[("files", ("perks.txt", TEXT, "text/plain"))],
        data={"index": "contract", "documentId": document_id, **form},
    )
    assert response.status_code == 202
    await wait_for_status(client, document_id, index="contract")
    return response


def test_contract_routes_all_exist(contract):
    ours = {(route.method, route.path) for route in ROUTES}
    theirs = {
        (method.upper(), path) for path, operations in contract["paths"].items() for method in operations
    }
    assert theirs - ours == set()


def test_contract_extra_fields_are_ours(contract):
    # Each allowed extra field must really be something Kernel Memory lacks.
    for name, fields in EXTRA_FIELDS.items():
        for field in fields:
            assert contract["components"]["schemas"][name]["properties"][field] == {}, f"{name}.{field}"


async def test_contract_upload_accepted(client, validate):
    steps = ["extract", "partition", "gen_embeddings", "save_records"]
    response = await _ingest(client, tags=["group:abc123", "user:xyz"], steps=steps)
    validate("UploadAccepted", response.json())


async def test_contract_upload_status(client, validate):
    await _ingest(client)
    response = await client.get("/upload-status", params={"index": "contract", "documentId": "perks"})
    validate("DataPipelineStatus", response.json())


async def test_contract_ask_with_every_field(client, validate):
    await _ingest(client, tags="user:xyz")
    query = {
        "index": "contract",
        "question": "What does PerksPlus pay for?",
        "filters": [{"user": ["xyz"]}],
        "minRelevance": 0.1,
        "stream": False,
        "args": {"custom_rag_prompt_str": None, "temperature": 0},
    }
    response = await client.post("/ask", json=query)
    assert response.status_code == 200
    validate("MemoryAnswer", response.json())
    assert response.json()["relevantSources"]


async def test_contract_ask_streamed_pieces(client, validate):
    await _ingest(client)
    response = await client.post(
        "/ask", json={"index": "contract", "question": "What does PerksPlus pay for?", "stream": True}
    )
    events = [chunk[len("data: ") :] for chunk in response.text.split("\n\n") if chunk.startswith("data: ")]
    for event in events[:-1]:
        validate("MemoryAnswer", json.loads(event))
    assert len(events) >= 2


async def test_contract_ask_no_result(client, validate):
    response = await client.post("/ask", json={"index": "empty-index", "question": "anything?"})
    assert response.status_code == 200
    validate("MemoryAnswer", response.json())


async def test_contract_search_with_every_field(client, validate):
    await _ingest(client, tags="user:xyz")
    query = {
        "index": "contract",
        "query": "gym memberships",
        "filters": [{"user": ["xyz"]}, {"user": ["other"]}],
        "minRelevance": 0,
        "limit": 3,
        "args": {},
    }
    response = await client.post("/search", json=query)
    assert response.status_code == 200
    validate("SearchResult", response.json())
    assert response.json()["results"][0]["partitions"]


async def test_contract_indexes(client, validate):
    await _ingest(client)
    response = await client.get("/indexes")
    validate("IndexCollection", response.json())


async def test_contract_delete_document(client, validate):
    response = await client.delete("/documents", params={"index": "contract", "documentId": "perks"})
    assert response.status_code == 202
    validate("DeleteAccepted", response.json())


async def test_contract_delete_index(client, validate):
    response = await client.delete("/indexes", params={"index": "contract"})
    assert response.status_code == 202
    validate("DeleteAccepted", response.json())


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("GET", "/upload-status", {"params": {"documentId": "missing"}}),
        ("GET", "/upload-status", {}),
        ("POST", "/ask", {"json": {}}),
        ("POST", "/upload", {"files": [("f", ("zero.txt", b"", "text/plain"))]}),
    ],
)
async def test_contract_problem_details(client, validate, method, path, kwargs):
    response = await client.request(method, path, **kwargs)
    assert response.status_code in {400, 404}
    validate("ProblemDetails", response.json())
    assert set(response.json()) == {"type", "title", "status", "detail", "instance"}


def test_contract_validator_rejects_unknown_field(validate):
    body = {"index": "i", "documentId": "d", "message": "m", "surprise": 1}
    with pytest.raises(jsonschema.ValidationError):
        validate("UploadAccepted", body)


async def test_contract_service_routes_are_strings(client):
    for path in ("/", "/health"):
        response = await client.get(path)
        jsonschema.validate(response.json(), {"type": "string"})

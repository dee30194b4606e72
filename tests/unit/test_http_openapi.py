"""Our OpenAPI document: generated from the handlers' models, committed, and served."""

from __future__ import annotations

from pathlib import Path

import httpx

from kernel_memory.http.app import create_app
from kernel_memory.http.openapi import build_openapi_document, render_openapi_document
from kernel_memory.http.routes import ROUTES
from tests.service_support import build_memory, local_settings

COMMITTED = Path(__file__).resolve().parents[2] / "kernel_memory" / "http" / "openapi.json"


def test_openapi_committed_matches_generated():
    # On failure, regenerate: python -m kernel_memory.http.openapi > kernel_memory/http/openapi.json
    assert COMMITTED.read_text(encoding="utf-8") == render_openapi_document()


def test_openapi_documents_every_route():
    paths = build_openapi_document()["paths"]
    documented = {(method.upper(), path) for path, operations in paths.items() for method in operations}
    assert documented == {(route.method, route.path) for route in ROUTES}


def test_openapi_schemas_have_our_extra_fields():
    schemas = build_openapi_document()["components"]["schemas"]
    assert "failed" in schemas["DataPipelineStatus"]["properties"]
    assert "pageNumbers" in schemas["Partition"]["properties"]


async def test_openapi_served_at_openapi_json(tmp_path):
    settings = local_settings(tmp_path)
    memory = build_memory(settings)
    app = create_app(settings, memory=memory)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        response = await http.get("/openapi.json")
    await memory.aclose()
    assert response.status_code == 200
    assert response.json() == build_openapi_document()

"""API key authentication: header, two keys for rotation, every route but /health."""

from __future__ import annotations

import httpx
import pytest

from kernel_memory.errors import AuthenticationError, AuthorizationError
from kernel_memory.http.app import create_app
from kernel_memory.http.auth import ApiKeyAuth
from kernel_memory.http.routes import ROUTES
from tests.service_support import build_memory, local_settings

KEY1 = "key-one-0123456789"
KEY2 = "key-two-9876543210"


@pytest.fixture
async def client(tmp_path):
    settings = local_settings(tmp_path, http={"api_key1": KEY1, "api_key2": KEY2})
    memory = build_memory(settings)
    app = create_app(settings, memory=memory)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        yield http
    await memory.aclose()


def test_auth_missing_key_raises_authentication_error():
    auth = ApiKeyAuth(header="Authorization", keys=[KEY1])
    with pytest.raises(AuthenticationError):
        auth.check({})


def test_auth_wrong_key_raises_authorization_error():
    auth = ApiKeyAuth(header="Authorization", keys=[KEY1])
    with pytest.raises(AuthorizationError):
        auth.check({"Authorization": "nope"})


def test_auth_accepts_bearer_prefix():
    auth = ApiKeyAuth(header="Authorization", keys=[KEY1])
    auth.check({"Authorization": f"Bearer {KEY1}"})


def test_auth_off_without_keys():
    auth = ApiKeyAuth(header="Authorization", keys=["", ""])
    assert not auth.enabled
    auth.check({})


def test_auth_key_prefix_is_not_enough():
    auth = ApiKeyAuth(header="Authorization", keys=[KEY1])
    with pytest.raises(AuthorizationError):
        auth.check({"Authorization": KEY1[:-1]})


async def test_http_missing_key_is_401(client):
    response = await client.get("/indexes")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


async def test_http_wrong_key_is_403(client):
    response = await client.get("/indexes", headers={"Authorization": "wrong"})
    assert response.status_code == 403


async def test_http_key1_is_accepted(client):
    response = await client.get("/indexes", headers={"Authorization": KEY1})
    assert response.status_code == 200


async def test_http_key2_is_accepted(client):
    response = await client.get("/indexes", headers={"Authorization": KEY2})
    assert response.status_code == 200


async def test_http_health_needs_no_key(client):
    response = await client.get("/health")
    assert response.status_code == 200


@pytest.mark.parametrize(
    "route", [route for route in ROUTES if route.path != "/health"], ids=lambda r: r.name
)
async def test_http_every_route_but_health_needs_key(client, route):
    response = await client.request(route.method, route.path)
    assert response.status_code == 401


async def test_http_custom_header_name(tmp_path):
    settings = local_settings(tmp_path, http={"api_key1": KEY1, "api_key_header": "X-Api-Key"})
    memory = build_memory(settings)
    app = create_app(settings, memory=memory)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        in_custom = await http.get("/indexes", headers={"X-Api-Key": KEY1})
        in_default = await http.get("/indexes", headers={"Authorization": KEY1})
    await memory.aclose()
    assert in_custom.status_code == 200
    assert in_default.status_code == 401


async def test_http_upload_without_key_stores_nothing(client):
    response = await client.post(
        "/upload", files=[("file", ("a.txt", b"hello", "text/plain"))], data={"documentId": "secret"}
    )
    status = await client.get(
        "/upload-status", params={"documentId": "secret"}, headers={"Authorization": KEY1}
    )
    assert response.status_code == 401
    assert status.status_code == 404

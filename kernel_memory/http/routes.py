"""The API's routes, shared by the serve app and function_app.py; importing this module loads nothing else."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RouteSpec:
    method: str
    path: str
    # Name of the `ApiHandlers` method, also the function name in function_app.py.
    name: str


ROUTES: tuple[RouteSpec, ...] = (
    RouteSpec("GET", "/", "service_status"),
    RouteSpec("GET", "/health", "health"),
    RouteSpec("POST", "/upload", "upload"),
    RouteSpec("GET", "/upload-status", "upload_status"),
    RouteSpec("POST", "/ask", "ask"),
    RouteSpec("POST", "/search", "search"),
    RouteSpec("DELETE", "/documents", "delete_document"),
    RouteSpec("GET", "/indexes", "list_indexes"),
    RouteSpec("DELETE", "/indexes", "delete_index"),
    RouteSpec("GET", "/download", "download"),
    RouteSpec("GET", "/openapi.json", "openapi"),
)

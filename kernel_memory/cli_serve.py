"""`kernel-memory serve`: the HTTP API on uvicorn, plus the queue worker when queues are Azure's.

uvicorn owns SIGINT and SIGTERM: it stops accepting requests, lets the ones
in flight finish, then runs the app's shutdown, which stops the queue worker
after its current messages and closes the memory.
"""

from __future__ import annotations

import ipaddress
import logging

from kernel_memory.settings import Settings

logger = logging.getLogger(__name__)


def serve(settings: Settings, *, host: str | None = None, port: int | None = None) -> None:
    """Serve until SIGINT or SIGTERM; binds to `KM_HTTP__HOST` (127.0.0.1 by default)."""
    import uvicorn

    from kernel_memory.http.app import create_app

    host = host or settings.http.host
    port = port if port is not None else settings.http.port
    if settings.http.api_key1 is None and settings.http.api_key2 is None and not _is_loopback(host):
        logger.warning(
            "serving on %s with no API key: anyone who reaches this port can read and delete documents;"
            " set KM_HTTP__API_KEY1",
            host,
        )
    logger.info(
        "serving Kernel Memory on http://%s:%d (queue %s, storage %s, memory DB %s)",
        host,
        port,
        settings.queue.type,
        settings.storage.type,
        settings.memory_db.type,
    )
    # The worker polls every queue about once a second; the Azure SDK would log each of those requests.
    logging.getLogger("azure").setLevel(max(logging.WARNING, logging.getLogger("azure").getEffectiveLevel()))
    app = create_app(settings, run_worker=True)
    config = uvicorn.Config(app, host=host, port=port, lifespan="on", log_level="info", proxy_headers=False)
    uvicorn.Server(config).run()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

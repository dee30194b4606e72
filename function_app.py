"""Azure Functions app (Python v2 programming model). It only registers handlers that live in kernel_memory/.

- HTTP functions: Kernel Memory's API, one function per route, through the
  HTTP streams extension (FastAPI request and response types), so uploads
  stream in and `/ask` with `stream: true` streams server-sent events out.
  The auth level is ANONYMOUS because the handlers check the API key
  themselves (`KM_HTTP__API_KEY1`/`KM_HTTP__API_KEY2` in the header
  `KM_HTTP__API_KEY_HEADER`), which Kernel Memory's clients already send.
  Function keys would need a second header that those clients do not send. For Entra ID, turn on App Service
  authentication in front. host.json sets `routePrefix` to "" so the routes
  are `/upload`, `/ask`, ... as in Kernel Memory. `GET /` is not registered:
  the host serves its own page there.
- Queue triggers: one per pipeline step on `%KM_QUEUE__PREFIX%-{step}`, and one
  per poison queue `%KM_QUEUE__PREFIX%-{step}-poison`, which marks the document
  failed. `KM_QUEUE__PREFIX` must therefore be an app setting.
- Blob trigger: blobs created in `%KM_STORAGE__INBOX_CONTAINER%` are imported as
  documents. Its source is Event Grid, the only blob trigger the Flex
  Consumption plan supports, so the storage account needs an Event Grid
  subscription to the function's blob extension endpoint.

The triggers connect through the `AzureWebJobsStorage` setting (or its
identity-based `AzureWebJobsStorage__*` form); the producer side of the queues
uses `KM_QUEUE__AZURE__*` or, when unset, `KM_STORAGE__AZURE__*`: both must
name the same storage account.
"""

# No `from __future__ import annotations` here: the Functions worker reads the
# Request and Response annotations as classes to pick the HTTP streams binding.
import azure.functions as func
from azurefunctions.extensions.http.fastapi import Request, Response

from kernel_memory import functions as km
from kernel_memory.http.routes import ROUTES
from kernel_memory.step_messages import QUEUE_STEPS

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


def _register_route(name: str, method: str, path: str) -> None:
    async def handle(req: Request) -> Response:
        return await km.handle_http(name, req)

    handle.__name__ = handle.__qualname__ = name
    registered = app.route(route=path.lstrip("/"), methods=[method], auth_level=func.AuthLevel.ANONYMOUS)(
        handle
    )
    app.function_name(name=name)(registered)


def _register_step_queue(step: str) -> None:
    async def run_step(message: func.QueueMessage) -> None:
        await km.handle_step_queue_message(step, message)

    name = f"step_{step}"
    run_step.__name__ = run_step.__qualname__ = name
    registered = app.queue_trigger(
        arg_name="message", queue_name=km.trigger_queue_name(step), connection=km.TRIGGER_CONNECTION
    )(run_step)
    app.function_name(name=name)(registered)


def _register_poison_queue(step: str) -> None:
    async def mark_failed(message: func.QueueMessage) -> None:
        await km.handle_poison_queue_message(step, message)

    name = f"poison_{step}"
    mark_failed.__name__ = mark_failed.__qualname__ = name
    registered = app.queue_trigger(
        arg_name="message",
        queue_name=km.trigger_queue_name(step, poison=True),
        connection=km.TRIGGER_CONNECTION,
    )(mark_failed)
    app.function_name(name=name)(registered)


for _route in ROUTES:
    if _route.path != "/":
        _register_route(_route.name, _route.method, _route.path)

for _step in QUEUE_STEPS:
    _register_step_queue(_step)
    _register_poison_queue(_step)


@app.function_name(name="inbox_blob")
@app.blob_trigger(
    arg_name="blob",
    path=km.inbox_blob_path(),
    connection=km.TRIGGER_CONNECTION,
    source=func.BlobSource.EVENT_GRID,
)
async def inbox_blob(blob: func.InputStream) -> None:
    await km.handle_inbox_blob(blob)

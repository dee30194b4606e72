"""Building `openai` SDK clients from settings and translating the SDK's errors.

The SDK is imported inside the functions, so a deployment on local models never
pays for it. Clients are built with `max_retries=0`: retries belong to our
`RetryPolicy`, which honours the service's delay headers and logs each attempt.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from kernel_memory.ai.retry import error_for_status, retry_after_seconds
from kernel_memory.errors import KernelMemoryError, PermanentError, TransientError
from kernel_memory.settings import OpenAISettings

if TYPE_CHECKING:
    from openai import AsyncOpenAI

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Entra ID scope of Azure OpenAI (Azure AI services) data-plane calls.
COGNITIVE_SERVICES_SCOPE = "https://cognitiveservices.azure.com/.default"

# Seconds one HTTP request may take before it counts as a transient time-out.
DEFAULT_TIMEOUT_SECONDS = 60.0


def build_openai_client(settings: OpenAISettings, *, setting_prefix: str, timeout: float) -> AsyncOpenAI:
    """Build an `AsyncOpenAI` client for OpenAI or any server speaking its protocol.

    Args:
        settings: Endpoint (the base URL, such as `https://api.openai.com/v1`; empty
            means OpenAI's) and API key.
        setting_prefix: Environment name of `settings`, such as `KM_EMBEDDING__OPENAI`,
            used to name a missing setting.
        timeout: Seconds per HTTP request.
    """
    from openai import AsyncOpenAI

    if settings.api_key is None:
        raise PermanentError(f"{setting_prefix}__API_KEY is not set: OpenAI needs an API key")
    return AsyncOpenAI(
        api_key=settings.api_key.get_secret_value(),
        base_url=settings.endpoint or None,
        max_retries=0,
        timeout=timeout,
    )


def build_azure_openai_client(
    settings: OpenAISettings, *, setting_prefix: str, timeout: float, credential: Any | None = None
) -> AsyncOpenAI:
    """Build an `AsyncAzureOpenAI` client authenticated by API key or by Entra ID.

    Args:
        settings: Endpoint, API version, and the API key or `use_identity`.
        setting_prefix: Environment name of `settings`, used to name a missing setting.
        timeout: Seconds per HTTP request.
        credential: Token credential used when `settings.use_identity` is true, such as
            one from `AzureCredentialHolder.get()`. Both synchronous and asynchronous
            credentials (with `get_token`) are accepted.
    """
    from openai import AsyncAzureOpenAI

    check_azure_openai_settings(settings, setting_prefix=setting_prefix)
    if settings.use_identity:
        return AsyncAzureOpenAI(
            azure_endpoint=settings.endpoint,
            api_version=settings.api_version,
            azure_ad_token_provider=_bearer_token_provider(credential or AzureCredentialHolder(None).get()),
            max_retries=0,
            timeout=timeout,
        )
    assert settings.api_key is not None  # checked above
    return AsyncAzureOpenAI(
        azure_endpoint=settings.endpoint,
        api_version=settings.api_version,
        api_key=settings.api_key.get_secret_value(),
        max_retries=0,
        timeout=timeout,
    )


def check_azure_openai_settings(settings: OpenAISettings, *, setting_prefix: str) -> None:
    """Raise PermanentError naming the first Azure OpenAI setting that is missing."""
    if not settings.endpoint:
        raise PermanentError(
            f"{setting_prefix}__ENDPOINT is not set: Azure OpenAI needs the resource endpoint, "
            f"such as https://NAME.openai.azure.com"
        )
    if not settings.deployment:
        raise PermanentError(
            f"{setting_prefix}__DEPLOYMENT is not set: Azure OpenAI needs the deployment name"
        )
    if settings.api_key is None and not settings.use_identity:
        raise PermanentError(
            f"{setting_prefix}__API_KEY is not set: set the key, or set {setting_prefix}__USE_IDENTITY=true "
            f"to authenticate with Entra ID"
        )


class AzureCredentialHolder:
    """The token credential of an Azure adapter: the caller's, or a `DefaultAzureCredential` it owns.

    An owned credential is built for each client (so for each event loop, as its HTTP
    session belongs to one) and closed by `aclose`. A caller's credential is never closed here.
    """

    def __init__(self, credential: Any | None) -> None:
        self._caller_credential = credential
        self._owned_credential: Any | None = None

    def get(self) -> Any:
        if self._caller_credential is not None:
            return self._caller_credential
        from azure.identity.aio import DefaultAzureCredential

        self._owned_credential = DefaultAzureCredential()
        return self._owned_credential

    async def aclose(self) -> None:
        if self._owned_credential is not None:
            await self._owned_credential.close()
            self._owned_credential = None


def _bearer_token_provider(credential: Any) -> Callable[[], str | Awaitable[str]]:
    if inspect.iscoroutinefunction(credential.get_token):
        from azure.identity.aio import get_bearer_token_provider as get_async_provider

        return get_async_provider(credential, COGNITIVE_SERVICES_SCOPE)

    from azure.identity import get_bearer_token_provider

    return get_bearer_token_provider(credential, COGNITIVE_SERVICES_SCOPE)


class LoopLocalClient:
    """An SDK client per event loop, built on first use in that loop.

    An httpx connection pool belongs to the loop that opened it, and one adapter can
    outlive a loop (each CLI command and each test runs its own `asyncio.run`).
    """

    def __init__(self, build: Callable[[], AsyncOpenAI]) -> None:
        self._build = build
        self._client: AsyncOpenAI | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def get(self) -> AsyncOpenAI:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._client = self._build()
            self._loop = loop
        return self._client

    async def aclose(self) -> None:
        if self._client is not None and self._loop is asyncio.get_running_loop():
            await self._client.close()
        self._client = None
        self._loop = None


async def call_openai(
    operation: Callable[[], Awaitable[T]], *, service: str, clock: Callable[[], float]
) -> T:
    """Await one SDK call, raising this package's errors in place of the SDK's."""
    import openai

    try:
        return await operation()
    except openai.OpenAIError as error:
        raise translate_openai_error(error, service=service, now=clock()) from error
    except Exception as error:
        # azure-identity raises its own errors when fetching a token fails.
        translated = _translate_credential_error(error, service=service)
        if translated is None:
            raise
        raise translated from error


def translate_openai_error(error: Exception, *, service: str, now: float) -> KernelMemoryError:
    """Map an `openai` exception to TransientError, ThrottledError or a permanent error.

    Args:
        error: The SDK exception.
        service: Name of the service for the message, such as "OpenAI embeddings".
        now: Current Unix time, to read a `Retry-After` HTTP date.
    """
    import openai

    if isinstance(error, openai.APITimeoutError):
        return TransientError(f"{service} timed out: {error}")
    if isinstance(error, openai.APIConnectionError):
        # The SDK raises this for a refused connection and for a stream cut off mid-way.
        return TransientError(f"{service} connection failed: {error}")
    if not isinstance(error, openai.APIStatusError):
        # Other SDK errors (such as a response that does not parse) do not go away by waiting.
        return PermanentError(f"{service} failed: {type(error).__name__}: {error}")

    headers = error.response.headers
    message = _service_message(error)
    if error.code == "insufficient_quota":
        # OpenAI returns 429 when the account is out of credit, and waiting does not fix that.
        return PermanentError(f"{service} returned HTTP 429 (insufficient_quota): {message}")

    retry_after = retry_after_seconds(headers, now=now)
    translated = error_for_status(error.status_code, message, service=service, retry_after=retry_after)
    # OpenAI's `x-should-retry` header overrides the status when present.
    should_retry = headers.get("x-should-retry")
    if should_retry == "false" and translated.transient:
        return PermanentError(str(translated))
    if should_retry == "true" and not translated.transient:
        return TransientError(str(translated), retry_after=retry_after)
    return translated


def _service_message(error: Any) -> str:
    """Return the service's own message from an APIStatusError body, else the SDK's message."""
    body = error.body
    if isinstance(body, dict):
        message = body.get("message")
        if isinstance(message, str) and message:
            code = body.get("code")
            return f"{message} (code {code})" if code else message
    return str(error.message)


def _translate_credential_error(error: Exception, *, service: str) -> KernelMemoryError | None:
    try:
        from azure.core.exceptions import ClientAuthenticationError
    except ImportError:
        return None
    if not isinstance(error, ClientAuthenticationError):
        return None
    return PermanentError(
        f"{service}: no Entra ID token for {COGNITIVE_SERVICES_SCOPE}: {error}. Sign in with `az login` "
        f"locally, or give the app a managed identity with the 'Cognitive Services OpenAI User' role"
    )

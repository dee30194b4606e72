"""Embedding and text generation on OpenAI and Azure OpenAI, through the `openai` SDK.

The OpenAI and Azure classes differ only in the client they build and in the
name sent as `model` (the model for OpenAI, the deployment for Azure).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from kernel_memory.ai.batching import BatchingEmbeddingGenerator, BatchLimits
from kernel_memory.ai.openai_client import (
    DEFAULT_TIMEOUT_SECONDS,
    AzureCredentialHolder,
    LoopLocalClient,
    build_azure_openai_client,
    build_openai_client,
    call_openai,
    check_azure_openai_settings,
)
from kernel_memory.ai.retry import RetryPolicy
from kernel_memory.errors import InvalidRequestError, PermanentError
from kernel_memory.settings import EmbeddingSettings, TextGenerationSettings

if TYPE_CHECKING:
    from openai import AsyncOpenAI

logger = logging.getLogger(__name__)

# Maximum input of OpenAI's embedding models (text-embedding-3-*, ada-002), in tokens.
OPENAI_EMBEDDING_MAX_INPUT_TOKENS = 8191

EMBEDDING_SETTINGS_PREFIX = "KM_EMBEDDING__OPENAI"
TEXT_GENERATION_SETTINGS_PREFIX = "KM_TEXT_GENERATION__OPENAI"


def _model_id(provider: str, name: str, dimensions: int | None) -> str:
    # The vector size is part of the identity: text-embedding-3-large at 256 and at 3072
    # dimensions give different vectors for the same text.
    return f"{provider}/{name}" if dimensions is None else f"{provider}/{name}:{dimensions}"


class _AzureOpenAIMixin:
    """The Azure side of an adapter: deployment names, Azure settings checks and the Azure client.

    It goes first in the bases, before the OpenAI class whose requests it reuses.
    """

    settings: Any
    settings_prefix: str
    timeout: float
    credential: AzureCredentialHolder

    def _provider(self) -> str:
        return "azure_openai"

    def _model_name(self) -> str:
        # Azure routes by deployment; the SDK puts this name into the URL path.
        assert self.settings.openai.deployment is not None  # checked in _check_settings
        return self.settings.openai.deployment

    def _check_settings(self) -> None:
        check_azure_openai_settings(self.settings.openai, setting_prefix=self.settings_prefix)

    def _build_client(self) -> AsyncOpenAI:
        return build_azure_openai_client(
            self.settings.openai,
            setting_prefix=self.settings_prefix,
            timeout=self.timeout,
            credential=self.credential.get() if self.settings.openai.use_identity else None,
        )

    async def aclose(self) -> None:
        """Close the HTTP connections of the current event loop's client and an owned credential."""
        await super().aclose()  # type: ignore[misc]
        await self.credential.aclose()


class OpenAIEmbeddingGenerator(BatchingEmbeddingGenerator):
    """Embeds texts with OpenAI's embeddings API (or a server speaking its protocol).

    Args:
        settings: Model, `dimensions`, batching limits, retries and the `openai` block.
        retry_policy: Overrides the policy built from `settings.max_retries` (tests
            inject one with a recording sleep).
        timeout: Seconds per HTTP request.
    """

    service = "OpenAI embeddings"
    settings_prefix = EMBEDDING_SETTINGS_PREFIX

    def __init__(
        self,
        settings: EmbeddingSettings,
        *,
        retry_policy: RetryPolicy | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        self.settings = settings
        self.timeout = timeout
        self._check_settings()
        policy = retry_policy or RetryPolicy(max_retries=settings.max_retries)
        super().__init__(
            model_id=_model_id(self._provider(), self._model_name(), settings.dimensions),
            limits=BatchLimits.from_settings(
                settings, model_max_input_tokens=OPENAI_EMBEDDING_MAX_INPUT_TOKENS
            ),
            retry_policy=policy,
        )
        self.dimensions = settings.dimensions
        self._clock = policy.clock
        self._client = LoopLocalClient(self._build_client)

    def _provider(self) -> str:
        return "openai"

    def _model_name(self) -> str:
        return self.settings.model

    def _check_settings(self) -> None:
        if self.settings.openai.api_key is None:
            raise PermanentError(f"{self.settings_prefix}__API_KEY is not set: OpenAI needs an API key")

    def _build_client(self) -> AsyncOpenAI:
        return build_openai_client(
            self.settings.openai, setting_prefix=self.settings_prefix, timeout=self.timeout
        )

    async def _embed_batch(self, texts: list[str]) -> list[list[float]]:
        client = self._client.get()
        options: dict[str, Any] = {}
        if self.settings.dimensions is not None:
            options["dimensions"] = self.settings.dimensions

        response = await call_openai(
            lambda: client.embeddings.create(model=self._model_name(), input=texts, **options),
            service=self.service,
            clock=self._clock,
        )
        # The API documents `data` in input order, but sorting by `index` costs nothing.
        items = sorted(response.data, key=lambda item: item.index)
        return [list(item.embedding) for item in items]

    async def aclose(self) -> None:
        """Close the HTTP connections of the current event loop's client."""
        await self._client.aclose()


class AzureOpenAIEmbeddingGenerator(_AzureOpenAIMixin, OpenAIEmbeddingGenerator):
    """Embeds texts with an Azure OpenAI embedding deployment.

    Args:
        settings: As for `OpenAIEmbeddingGenerator`; `openai.endpoint`, `openai.deployment`
            and `openai.api_key` (or `openai.use_identity`) are required.
        credential: Token credential for `use_identity`; None uses `DefaultAzureCredential`.
    """

    service = "Azure OpenAI embeddings"

    def __init__(
        self,
        settings: EmbeddingSettings,
        *,
        retry_policy: RetryPolicy | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        credential: Any | None = None,
    ) -> None:
        self.credential = AzureCredentialHolder(credential)
        super().__init__(settings, retry_policy=retry_policy, timeout=timeout)


class OpenAITextGenerator:
    """Writes answers with OpenAI chat completions, streamed piece by piece by default.

    Args:
        settings: Model, prompt size, retries and the `openai` block.
        streaming: False requests the whole answer at once and yields it as one piece,
            for servers or proxies that do not pass server-sent events through.
        retry_policy: Overrides the policy built from `settings.max_retries`.
        timeout: Seconds per HTTP request (for a stream, until the response starts
            and between its events).
    """

    service = "OpenAI chat completions"
    settings_prefix = TEXT_GENERATION_SETTINGS_PREFIX
    extractive = False

    def __init__(
        self,
        settings: TextGenerationSettings,
        *,
        streaming: bool = True,
        retry_policy: RetryPolicy | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        self.settings = settings
        self.streaming = streaming
        self.timeout = timeout
        self.max_tokens = settings.max_prompt_tokens
        self._retry_policy = retry_policy or RetryPolicy(max_retries=settings.max_retries)
        self._check_settings()
        self.model_id = f"{self._provider()}/{self._model_name()}"
        self._client = LoopLocalClient(self._build_client)

    def _provider(self) -> str:
        return "openai"

    def _model_name(self) -> str:
        return self.settings.model

    def _check_settings(self) -> None:
        if self.settings.openai.api_key is None:
            raise PermanentError(f"{self.settings_prefix}__API_KEY is not set: OpenAI needs an API key")

    def _build_client(self) -> AsyncOpenAI:
        return build_openai_client(
            self.settings.openai, setting_prefix=self.settings_prefix, timeout=self.timeout
        )

    async def generate(self, prompt: str, *, max_tokens: int, temperature: float) -> AsyncIterator[str]:
        """Stream the answer to `prompt`, sent as one user message.

        Raises:
            InvalidRequestError: The prompt is blank, or the content filter blocked the
                prompt or the answer.
            TransientError: The service failed after the retries, or broke off mid-stream.
        """
        if not prompt.strip():
            raise InvalidRequestError("the prompt is blank: there is nothing to answer")

        client = self._client.get()
        request: dict[str, Any] = {
            "model": self._model_name(),
            "messages": [{"role": "user", "content": prompt}],
            # `max_tokens` is deprecated by OpenAI and rejected by reasoning models.
            # NOTE: Azure accepts `max_completion_tokens` only from API version 2024-10-21 on (as far as
            # we know); older `KM_TEXT_GENERATION__OPENAI__API_VERSION` values may reject it.
            "max_completion_tokens": max_tokens,
            "temperature": temperature,
        }
        description = f"{self.model_id} chat completion"

        if not self.streaming:
            completion = await self._retry_policy.run(
                lambda: self._call(lambda: client.chat.completions.create(**request)),
                description=description,
            )
            choice = completion.choices[0] if completion.choices else None
            if choice is None:
                raise PermanentError(f"{self.service} returned no choices for model {self.model_id}")
            self._check_finish_reason(choice.finish_reason)
            if choice.message.content:
                yield choice.message.content
            return

        # Only opening the stream is retried: once pieces were yielded, a retry would repeat them.
        stream = await self._retry_policy.run(
            lambda: self._call(lambda: client.chat.completions.create(**request, stream=True)),
            description=description,
        )
        pieces = 0
        try:
            iterator = stream.__aiter__()
            while True:
                chunk = await self._call(lambda: _next_chunk(iterator))
                if chunk is None:
                    break
                # Azure sends the prompt filter results first, in a chunk without choices.
                if not chunk.choices:
                    continue
                choice = chunk.choices[0]
                if choice.delta is not None and choice.delta.content:
                    pieces += 1
                    yield choice.delta.content
                if choice.finish_reason is not None:
                    self._check_finish_reason(choice.finish_reason)
        finally:
            await stream.close()
        logger.debug("%s streamed %d pieces", self.model_id, pieces)

    async def _call(self, operation: Any) -> Any:
        return await call_openai(operation, service=self.service, clock=self._retry_policy.clock)

    def _check_finish_reason(self, finish_reason: str | None) -> None:
        if finish_reason == "content_filter":
            raise InvalidRequestError(
                f"{self.service}: the content filter of {self.model_id} blocked the answer; rephrase the question"
            )
        if finish_reason == "length":
            logger.info("%s: the completion was cut off at max_tokens", self.model_id)

    async def aclose(self) -> None:
        """Close the HTTP connections of the current event loop's client."""
        await self._client.aclose()


class AzureOpenAITextGenerator(_AzureOpenAIMixin, OpenAITextGenerator):
    """Writes answers with an Azure OpenAI chat deployment.

    Args:
        settings: As for `OpenAITextGenerator`; `openai.endpoint`, `openai.deployment` and
            `openai.api_key` (or `openai.use_identity`) are required.
        credential: Token credential for `use_identity`; None uses `DefaultAzureCredential`.
    """

    service = "Azure OpenAI chat completions"

    def __init__(
        self,
        settings: TextGenerationSettings,
        *,
        streaming: bool = True,
        retry_policy: RetryPolicy | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        credential: Any | None = None,
    ) -> None:
        self.credential = AzureCredentialHolder(credential)
        super().__init__(settings, streaming=streaming, retry_policy=retry_policy, timeout=timeout)


async def _next_chunk(iterator: Any) -> Any:
    try:
        return await iterator.__anext__()
    except StopAsyncIteration:
        return None

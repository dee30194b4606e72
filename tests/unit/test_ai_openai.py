"""OpenAI and Azure OpenAI adapters against the fake service, through the real `openai` SDK."""

from __future__ import annotations

import email.utils
import math

import pytest
from pydantic import SecretStr

from kernel_memory.ai.openai_adapters import (
    AzureOpenAIEmbeddingGenerator,
    AzureOpenAITextGenerator,
    OpenAIEmbeddingGenerator,
    OpenAITextGenerator,
)
from kernel_memory.ai.retry import RetryPolicy
from kernel_memory.errors import (
    InvalidRequestError,
    PermanentError,
    ThrottledError,
    TransientError,
)
from kernel_memory.settings import EmbeddingSettings, OpenAISettings, TextGenerationSettings
from tests.fakes.openai_server import FakeOpenAIServer, fake_embedding

NOW = 1_700_000_000.0


class RecordingSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def policy(sleep: RecordingSleep, *, max_retries: int = 3) -> RetryPolicy:
    return RetryPolicy(max_retries=max_retries, sleep=sleep, jitter=0, clock=lambda: NOW)


def openai_embedding_settings(server: FakeOpenAIServer, **overrides) -> EmbeddingSettings:
    values = {
        "type": "openai",
        "model": "text-embedding-3-small",
        "openai": OpenAISettings(endpoint=server.openai_base_url, api_key=SecretStr("sk-test")),
    }
    values.update(overrides)
    return EmbeddingSettings(**values)


def azure_openai_settings(server: FakeOpenAIServer, **overrides) -> OpenAISettings:
    values = {"endpoint": server.azure_endpoint, "deployment": "embed-dep", "api_key": SecretStr("azure-key")}
    values.update(overrides)
    return OpenAISettings(**values)


def chat_settings(server: FakeOpenAIServer) -> TextGenerationSettings:
    return TextGenerationSettings(
        type="openai",
        model="gpt-4o-mini",
        openai=OpenAISettings(endpoint=server.openai_base_url, api_key=SecretStr("sk-test")),
    )


class AsyncCredential:
    """A token credential in the shape of azure.identity.aio credentials."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []
        self.closed = False

    async def get_token(self, *scopes: str, **kwargs):
        from azure.core.credentials import AccessToken

        self.scopes.append(scopes)
        return AccessToken("fake-entra-token", int(NOW) + 10_000_000_000)

    async def close(self) -> None:
        self.closed = True


class SyncCredential:
    """A token credential in the shape of azure.identity credentials."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs):
        from azure.core.credentials import AccessToken

        self.scopes.append(scopes)
        return AccessToken("fake-sync-token", int(NOW) + 10_000_000_000)


# ---- embeddings ----


async def test_openai_embeddings_vectors(fake_openai):
    generator = OpenAIEmbeddingGenerator(openai_embedding_settings(fake_openai))
    vectors = await generator.embed_documents(["alpha beta", "gamma"])
    assert vectors[1] == pytest.approx(fake_embedding("gamma", 1536), abs=1e-6)


async def test_openai_embeddings_request_shape(fake_openai):
    generator = OpenAIEmbeddingGenerator(openai_embedding_settings(fake_openai))
    await generator.embed_documents(["alpha beta"])
    request = fake_openai.requests_of("embeddings")[0]
    assert request.path == "/v1/embeddings"
    assert request.body["model"] == "text-embedding-3-small"
    assert request.headers["authorization"] == "Bearer sk-test"
    assert "dimensions" not in request.body


async def test_openai_embeddings_dimensions_sent(fake_openai):
    generator = OpenAIEmbeddingGenerator(openai_embedding_settings(fake_openai, dimensions=256))
    vectors = await generator.embed_documents(["alpha"])
    assert fake_openai.requests_of("embeddings")[0].body["dimensions"] == 256
    assert len(vectors[0]) == 256
    assert generator.model_id == "openai/text-embedding-3-small:256"


async def test_openai_embeddings_max_input_tokens_default():
    settings = EmbeddingSettings(type="openai", openai=OpenAISettings(api_key=SecretStr("k")))
    assert OpenAIEmbeddingGenerator(settings).max_input_tokens == 8191


async def test_openai_embeddings_batches_by_count(fake_openai):
    generator = OpenAIEmbeddingGenerator(openai_embedding_settings(fake_openai, max_batch_size=4))
    vectors = await generator.embed_documents([f"text number {n}" for n in range(10)])
    sizes = [len(request.inputs) for request in fake_openai.requests_of("embeddings")]
    assert sorted(sizes) == [2, 4, 4]
    assert vectors[9] == pytest.approx(fake_embedding("text number 9", 1536), abs=1e-6)


async def test_openai_embeddings_batches_by_tokens(fake_openai):
    settings = openai_embedding_settings(fake_openai, max_batch_size=100, max_tokens_per_request=250)
    generator = OpenAIEmbeddingGenerator(settings)
    # Each text is 100 cl100k_base tokens, so a request carries two of them.
    await generator.embed_documents([" ".join(["word"] * 100)] * 5)
    sizes = [len(request.inputs) for request in fake_openai.requests_of("embeddings")]
    assert sorted(sizes) == [1, 2, 2]


async def test_openai_embeddings_concurrency_bound(fake_openai):
    fake_openai.response_delay = 0.05
    settings = openai_embedding_settings(fake_openai, max_batch_size=1, max_concurrency=2)
    await OpenAIEmbeddingGenerator(settings).embed_documents([f"text {n}" for n in range(8)])
    assert fake_openai.max_in_flight == 2


async def test_openai_embeddings_blank_never_sent(fake_openai):
    generator = OpenAIEmbeddingGenerator(openai_embedding_settings(fake_openai))
    with pytest.raises(InvalidRequestError, match="blank"):
        await generator.embed_documents(["fine", "  \n "])
    assert fake_openai.requests == []


@pytest.mark.parametrize(
    ("headers", "expected_delay"),
    [
        ({"retry-after-ms": "1250"}, 1.25),
        ({"x-ms-retry-after-ms": "750"}, 0.75),
        ({"Retry-After": "3"}, 3.0),
        ({"Retry-After": email.utils.formatdate(NOW + 20, usegmt=True)}, 20.0),
        ({"retry-after-ms": "40", "x-ms-retry-after-ms": "900", "Retry-After": "9"}, 0.04),
    ],
)
async def test_openai_embeddings_throttle_honours_header(fake_openai, headers, expected_delay):
    sleep = RecordingSleep()
    fake_openai.fail_next(2, status=429, headers=headers, message="Rate limit reached")
    generator = OpenAIEmbeddingGenerator(openai_embedding_settings(fake_openai), retry_policy=policy(sleep))
    await generator.embed_documents(["alpha"])
    assert sleep.delays == pytest.approx([expected_delay, expected_delay])
    assert len(fake_openai.requests_of("embeddings")) == 3


async def test_openai_embeddings_throttle_exhausts_retries(fake_openai):
    sleep = RecordingSleep()
    fake_openai.fail_next(10, status=429, headers={"retry-after-ms": "5"}, message="Rate limit reached")
    generator = OpenAIEmbeddingGenerator(
        openai_embedding_settings(fake_openai), retry_policy=policy(sleep, max_retries=2)
    )
    with pytest.raises(ThrottledError, match="Rate limit reached") as raised:
        await generator.embed_documents(["alpha"])
    assert raised.value.retry_after == 0.005
    assert len(fake_openai.requests_of("embeddings")) == 3


async def test_openai_embeddings_server_error_backs_off(fake_openai):
    sleep = RecordingSleep()
    fake_openai.fail_next(2, status=500, message="The server had an error")
    generator = OpenAIEmbeddingGenerator(openai_embedding_settings(fake_openai), retry_policy=policy(sleep))
    await generator.embed_documents(["alpha"])
    assert sleep.delays == [1.0, 2.0]


async def test_openai_embeddings_bad_request_not_retried(fake_openai):
    sleep = RecordingSleep()
    fake_openai.fail_next(1, status=400, message="This model's maximum context length is 8192 tokens")
    generator = OpenAIEmbeddingGenerator(openai_embedding_settings(fake_openai), retry_policy=policy(sleep))
    with pytest.raises(InvalidRequestError, match="maximum context length is 8192 tokens"):
        await generator.embed_documents(["alpha"])
    assert len(fake_openai.requests_of("embeddings")) == 1
    assert sleep.delays == []


async def test_openai_embeddings_content_filter_not_retried(fake_openai):
    fake_openai.fail_next(1, status=400, message="filtered by the content policy", code="content_filter")
    generator = OpenAIEmbeddingGenerator(
        openai_embedding_settings(fake_openai), retry_policy=policy(RecordingSleep())
    )
    with pytest.raises(InvalidRequestError, match="content_filter"):
        await generator.embed_documents(["alpha"])
    assert len(fake_openai.requests_of("embeddings")) == 1


@pytest.mark.parametrize("status", [401, 403, 404])
async def test_openai_embeddings_config_errors_permanent(fake_openai, status):
    fake_openai.fail_next(1, status=status, message="scripted")
    generator = OpenAIEmbeddingGenerator(
        openai_embedding_settings(fake_openai), retry_policy=policy(RecordingSleep())
    )
    with pytest.raises(PermanentError, match=f"HTTP {status}"):
        await generator.embed_documents(["alpha"])
    assert len(fake_openai.requests_of("embeddings")) == 1


async def test_openai_embeddings_insufficient_quota_permanent(fake_openai):
    fake_openai.fail_next(1, status=429, message="You exceeded your current quota", code="insufficient_quota")
    generator = OpenAIEmbeddingGenerator(
        openai_embedding_settings(fake_openai), retry_policy=policy(RecordingSleep())
    )
    with pytest.raises(PermanentError, match="insufficient_quota"):
        await generator.embed_documents(["alpha"])
    assert len(fake_openai.requests_of("embeddings")) == 1


async def test_openai_embeddings_should_retry_header_wins(fake_openai):
    fake_openai.fail_next(1, status=400, headers={"x-should-retry": "true"}, message="try again")
    sleep = RecordingSleep()
    generator = OpenAIEmbeddingGenerator(openai_embedding_settings(fake_openai), retry_policy=policy(sleep))
    await generator.embed_documents(["alpha"])
    assert len(fake_openai.requests_of("embeddings")) == 2


async def test_openai_embeddings_timeout_transient(fake_openai):
    fake_openai.response_delay = 0.5
    generator = OpenAIEmbeddingGenerator(
        openai_embedding_settings(fake_openai),
        retry_policy=policy(RecordingSleep(), max_retries=1),
        timeout=0.1,
    )
    with pytest.raises(TransientError, match="timed out"):
        await generator.embed_documents(["alpha"])
    assert len(fake_openai.requests_of("embeddings")) == 2


async def test_openai_embeddings_connection_refused_transient():
    with FakeOpenAIServer() as server:
        settings = openai_embedding_settings(server)
    generator = OpenAIEmbeddingGenerator(settings, retry_policy=policy(RecordingSleep(), max_retries=1))
    with pytest.raises(TransientError, match="connection failed"):
        await generator.embed_documents(["alpha"])


def test_openai_embeddings_missing_key():
    settings = EmbeddingSettings(type="openai", openai=OpenAISettings(endpoint="http://127.0.0.1:1/v1"))
    with pytest.raises(PermanentError, match="KM_EMBEDDING__OPENAI__API_KEY is not set"):
        OpenAIEmbeddingGenerator(settings)


async def test_azure_embeddings_api_key_header(fake_openai):
    settings = EmbeddingSettings(type="azure_openai", openai=azure_openai_settings(fake_openai))
    generator = AzureOpenAIEmbeddingGenerator(settings)
    await generator.embed_documents(["alpha"])
    request = fake_openai.requests_of("embeddings")[0]
    assert request.path == "/openai/deployments/embed-dep/embeddings"
    assert request.query["api-version"] == "2024-10-21"
    assert request.headers["api-key"] == "azure-key"
    assert "authorization" not in request.headers


async def test_azure_embeddings_model_id_names_deployment(fake_openai):
    settings = EmbeddingSettings(
        type="azure_openai", dimensions=512, openai=azure_openai_settings(fake_openai)
    )
    assert AzureOpenAIEmbeddingGenerator(settings).model_id == "azure_openai/embed-dep:512"


@pytest.mark.parametrize("credential_type", [AsyncCredential, SyncCredential])
async def test_azure_embeddings_bearer_token(fake_openai, credential_type):
    credential = credential_type()
    openai_settings = azure_openai_settings(fake_openai, api_key=None, use_identity=True)
    settings = EmbeddingSettings(type="azure_openai", openai=openai_settings)
    generator = AzureOpenAIEmbeddingGenerator(settings, credential=credential)
    await generator.embed_documents(["alpha"])
    await generator.embed_documents(["beta"])
    headers = fake_openai.requests_of("embeddings")[1].headers
    token = "fake-entra-token" if credential_type is AsyncCredential else "fake-sync-token"
    assert headers["authorization"] == f"Bearer {token}"
    assert "api-key" not in headers
    assert credential.scopes[0] == ("https://cognitiveservices.azure.com/.default",)


async def test_azure_aclose_keeps_caller_credential(fake_openai):
    credential = AsyncCredential()
    openai_settings = azure_openai_settings(fake_openai, api_key=None, use_identity=True)
    generator = AzureOpenAIEmbeddingGenerator(
        EmbeddingSettings(type="azure_openai", openai=openai_settings), credential=credential
    )
    await generator.embed_query("alpha")
    await generator.aclose()
    assert credential.closed is False


async def test_azure_embeddings_throttle_azure_header(fake_openai):
    sleep = RecordingSleep()
    fake_openai.fail_next(1, status=429, headers={"x-ms-retry-after-ms": "1800", "Retry-After": "2"})
    settings = EmbeddingSettings(type="azure_openai", openai=azure_openai_settings(fake_openai))
    generator = AzureOpenAIEmbeddingGenerator(settings, retry_policy=policy(sleep))
    await generator.embed_documents(["alpha"])
    assert sleep.delays == [1.8]


@pytest.mark.parametrize(
    ("overrides", "missing"),
    [
        ({"endpoint": None}, "KM_EMBEDDING__OPENAI__ENDPOINT"),
        ({"deployment": None}, "KM_EMBEDDING__OPENAI__DEPLOYMENT"),
        ({"api_key": None}, "KM_EMBEDDING__OPENAI__API_KEY"),
    ],
)
def test_azure_embeddings_missing_setting(overrides, missing):
    values = {"endpoint": "https://x.openai.azure.com", "deployment": "d", "api_key": SecretStr("k")}
    values.update(overrides)
    settings = EmbeddingSettings(type="azure_openai", openai=OpenAISettings(**values))
    with pytest.raises(PermanentError, match=f"{missing} is not set"):
        AzureOpenAIEmbeddingGenerator(settings)


async def test_embeddings_client_per_event_loop(fake_openai):
    generator = OpenAIEmbeddingGenerator(openai_embedding_settings(fake_openai))
    await generator.embed_query("first loop")
    # A second loop (another asyncio.run) gets its own client instead of a dead connection pool.
    import asyncio
    import threading

    result: list[list[float]] = []
    thread = threading.Thread(target=lambda: result.append(asyncio.run(generator.embed_query("second loop"))))
    thread.start()
    thread.join(timeout=30)
    assert len(result[0]) == 1536


async def test_embed_query_vector_is_unit_length(fake_openai):
    generator = OpenAIEmbeddingGenerator(openai_embedding_settings(fake_openai))
    vector = await generator.embed_query("where is the cafe")
    assert math.isclose(sum(value * value for value in vector), 1.0, rel_tol=1e-5)


# ---- chat completions ----


async def collect(generator, prompt: str = "What time is it?") -> list[str]:
    return [piece async for piece in generator.generate(prompt, max_tokens=50, temperature=0.0)]


async def test_openai_chat_streams_pieces_in_order(fake_openai):
    fake_openai.chat_reply = lambda messages: "Open from nine to five."
    pieces = await collect(OpenAITextGenerator(chat_settings(fake_openai)))
    assert pieces == ["Open", " from", " nine", " to", " five."]


async def test_openai_chat_request_shape(fake_openai):
    await collect(OpenAITextGenerator(chat_settings(fake_openai)), "the prompt")
    body = fake_openai.requests_of("chat")[0].body
    assert body["model"] == "gpt-4o-mini"
    assert body["messages"] == [{"role": "user", "content": "the prompt"}]
    assert body["stream"] is True
    assert body["max_completion_tokens"] == 50
    assert body["temperature"] == 0.0


async def test_openai_chat_without_streaming(fake_openai):
    fake_openai.chat_reply = lambda messages: "Closed on Sundays."
    pieces = await collect(OpenAITextGenerator(chat_settings(fake_openai), streaming=False))
    assert pieces == ["Closed on Sundays."]
    assert "stream" not in fake_openai.requests_of("chat")[0].body


async def test_openai_chat_retries_opening_stream(fake_openai):
    sleep = RecordingSleep()
    fake_openai.fail_next(1, status=429, headers={"retry-after-ms": "300"}, kind="chat")
    generator = OpenAITextGenerator(chat_settings(fake_openai), retry_policy=policy(sleep))
    pieces = await collect(generator)
    assert "".join(pieces) == "This is the fake model's answer."
    assert sleep.delays == [0.3]


async def test_openai_chat_broken_stream_transient(fake_openai):
    fake_openai.chat_reply = lambda messages: "one two three four"
    fake_openai.stream_break_after = 2
    pieces: list[str] = []
    generator = OpenAITextGenerator(chat_settings(fake_openai), retry_policy=policy(RecordingSleep()))
    with pytest.raises(TransientError, match="connection failed"):
        async for piece in generator.generate("prompt", max_tokens=10, temperature=0.0):
            pieces.append(piece)
    assert pieces == ["one", " two"]
    assert len(fake_openai.requests_of("chat")) == 1


async def test_openai_chat_content_filter_finish(fake_openai):
    fake_openai.finish_reason = "content_filter"
    with pytest.raises(InvalidRequestError, match="content filter"):
        await collect(OpenAITextGenerator(chat_settings(fake_openai)))


async def test_openai_chat_blank_prompt_rejected(fake_openai):
    with pytest.raises(InvalidRequestError, match="prompt is blank"):
        await collect(OpenAITextGenerator(chat_settings(fake_openai)), " \n")
    assert fake_openai.requests == []


async def test_openai_chat_bad_request_not_retried(fake_openai):
    fake_openai.fail_next(1, status=400, message="The prompt is too long", kind="chat")
    generator = OpenAITextGenerator(chat_settings(fake_openai), retry_policy=policy(RecordingSleep()))
    with pytest.raises(InvalidRequestError, match="The prompt is too long"):
        await collect(generator)
    assert len(fake_openai.requests_of("chat")) == 1


async def test_azure_chat_streams_with_api_key(fake_openai):
    settings = TextGenerationSettings(
        type="azure_openai", openai=azure_openai_settings(fake_openai, deployment="chat-dep")
    )
    fake_openai.chat_reply = lambda messages: "Nine to five."
    pieces = await collect(AzureOpenAITextGenerator(settings))
    request = fake_openai.requests_of("chat")[0]
    assert pieces == ["Nine", " to", " five."]
    assert request.path == "/openai/deployments/chat-dep/chat/completions"
    assert request.headers["api-key"] == "azure-key"


async def test_azure_chat_bearer_token(fake_openai):
    openai_settings = azure_openai_settings(
        fake_openai, deployment="chat-dep", api_key=None, use_identity=True
    )
    settings = TextGenerationSettings(type="azure_openai", openai=openai_settings)
    await collect(AzureOpenAITextGenerator(settings, credential=AsyncCredential()))
    assert fake_openai.requests_of("chat")[0].headers["authorization"] == "Bearer fake-entra-token"


def test_azure_chat_missing_deployment():
    settings = TextGenerationSettings(
        type="azure_openai",
        openai=OpenAISettings(endpoint="https://x.openai.azure.com", api_key=SecretStr("k")),
    )
    with pytest.raises(PermanentError, match="KM_TEXT_GENERATION__OPENAI__DEPLOYMENT is not set"):
        AzureOpenAITextGenerator(settings)

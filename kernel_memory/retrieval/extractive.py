"""The answerer used when no language model is configured: it quotes sentences from the facts.

No language model ships inside a package, so the embedded defaults answer a
question by extraction. The facts (the partitions retrieval found) are split into
sentences, each sentence is scored against the question, and the best ones that
fit the token budget are returned in reading order with their source:

    Extractive answer (no language model is configured); the most relevant passages:
    - The copayment for primary care visits is typically around $20, ... (Northwind_Health_Plus.pdf, page 11)

A sentence's score adds three parts:
- lexical: the IDF-weighted share of the question's terms that the sentence
  contains, with light stemming (plurals, -ing, -ed) and prefix matches
  ("copay" finds "copayment"); IDF is computed over the sentences of all facts,
  so words every fact repeats count for little;
- the relevance retrieval gave the fact the sentence comes from;
- when an embedding generator is passed, the cosine similarity of the question
  and the sentence, computed for the lexically best candidates only.

When no sentence contains any word of the question (stopwords and the source's
name aside), the facts matched by vector similarity alone, which a local model
rates high for any two texts. The answerer then quotes nothing, and retrieval
reports "INFO NOT FOUND". NOTE: this also happens to a question in another
language than the documents, which the multilingual model may match correctly.
"""

from __future__ import annotations

import logging
import math
import re
import unicodedata
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace

from kernel_memory.ai.base import EmbeddingGenerator
from kernel_memory.errors import InvalidRequestError, PermanentError
from kernel_memory.models import PAYLOAD_FILE, PAYLOAD_TEXT, ScoredRecord
from kernel_memory.retrieval.citations import page_numbers
from kernel_memory.settings import Settings

logger = logging.getLogger(__name__)

EXTRACTIVE_HEADER = "Extractive answer (no language model is configured); the most relevant passages:"

# Weights of the score parts. Lexical overlap weighs most because it is what tells
# two sentences of one relevant fact apart.
LEXICAL_WEIGHT = 0.65
RELEVANCE_WEIGHT = 0.2
EMBEDDING_WEIGHT = 0.35
# Bonus for a sentence with a number when the question asks for an amount.
QUANTITY_BONUS = 0.15
# Sentences scoring under this share of the best sentence's score are left out, even
# when the budget has room, so a clear answer is not padded with barely related text.
RELATIVE_SCORE_CUTOFF = 0.45
# Sentences embedded for the similarity part, taken from the top of the lexical ranking.
EMBEDDING_CANDIDATES = 32
# A prefix match ("copay" in "copayment") counts this much of a full match.
PREFIX_MATCH_WEIGHT = 0.8
# Sentences shorter than this many words are down-weighted: they are mostly headings.
SHORT_SENTENCE_WORDS = 5
# Fewest tokens worth spending on a sentence cut to fit the remaining budget.
MIN_TRIMMED_TOKENS = 12
# Smallest budget, after the header, that fits a useful sentence and its source.
MIN_ANSWER_TOKENS = 40

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_TERM = re.compile(rf"[{_CJK}]+|[^\W_]+", re.UNICODE)
_CJK_RUN = re.compile(rf"[{_CJK}]+")
# A bullet or a list number at the start of a line.
_BULLET = re.compile(r"^\s*(?:[•·▪◦●○■□➢►‣⁃∙*\-–—]|\(?\d{1,3}[.)]|\(?[a-zA-Z][.)])\s+")
# Sentence ends: Latin end punctuation with closing quotes and a space after it,
# or CJK full stops, which need no space after them.
_LATIN_END = re.compile(r"""[.!?…]+["'”’)\]]*\s+""")
_CJK_END = re.compile(rf"[。！？｡]+[」』）”’]*\s*|(?<=[{_CJK}])[.!?]+(?=[{_CJK}])")
_ABBREVIATIONS_TEXT = (
    "mr mrs ms dr prof sr jr st vs etc e.g i.e eg ie inc ltd co corp no nos fig figs approx "
    "dept est jan feb mar apr jun jul aug sep sept oct nov dec u.s u.k a.m p.m ph.d cf al ca "
    "resp"
)
_ABBREVIATIONS = frozenset(_ABBREVIATIONS_TEXT.split())
# Words too common to tell sentences apart, left out of the terms.
_STOPWORDS_TEXT = (
    "a an and are as at be been being but by can could did do does for from had has have how "
    "i if in into is it its may me might must my of on or our shall should so than that the "
    "their them then there these they this those to was we were what when where which while "
    "who whom why will with would you your about any all also more most other some such only "
    "own same"
)
_STOPWORDS = frozenset(_STOPWORDS_TEXT.split())
_QUANTITY_QUESTION = re.compile(
    r"\b(how much|how many|how long|cost|costs|price|amount|fee|fees|copay\w*|coinsurance|deductible\w*|"
    r"percent\w*|rate|limit|maximum|minimum|number)\b",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"\d")


@dataclass(frozen=True, slots=True)
class Fact:
    """A partition retrieval found for the question, in the order of its relevance."""

    text: str
    source_name: str
    # Relevance retrieval gave the partition, 0..1.
    relevance: float
    # Printed pages the partition comes from; empty for formats without pages.
    page_numbers: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class _Sentence:
    fact_index: int
    position: int
    text: str
    terms: tuple[str, ...]
    # Terms of the source's name: "Northwind_Health_Plus.pdf" gives every one of its
    # sentences the terms northwind, health and plus, so a sentence need not repeat
    # the document's subject to match a question that names it.
    source_terms: frozenset[str] = frozenset()
    # A piece of a sentence that the partitioner cut at the start or end of the fact.
    fragment: bool = False


def fact_from_record(scored: ScoredRecord) -> Fact:
    """Build a fact from a memory DB search result."""
    payload = scored.record.payload
    return Fact(
        text=str(payload.get(PAYLOAD_TEXT, "")),
        source_name=str(payload.get(PAYLOAD_FILE, "")),
        relevance=float(scored.relevance),
        page_numbers=tuple(page_numbers(scored)),
    )


# ---------------------------------------------------------------- sentences


def split_sentences(text: str) -> list[str]:
    """Split text into sentences, keeping bullets and headings as units of their own.

    Lines wrapped by a PDF's layout are joined back first. A blank line, a bullet,
    a line ending in ":" and a short line without end punctuation (a heading) each
    end the unit before them.
    """
    sentences: list[str] = []
    for block in _line_blocks(text):
        sentences.extend(_split_block(block))
    return [s for s in sentences if _TERM.search(s)]


def _line_blocks(text: str) -> list[str]:
    blocks: list[str] = []
    current: list[str] = []

    def flush() -> None:
        if current:
            blocks.append(_join_wrapped(current))
            current.clear()

    for raw_line in text.splitlines():
        line = raw_line.strip()
        if not line:
            flush()
            continue
        if _BULLET.match(line):
            flush()
            line = _BULLET.sub("", line, count=1)
        elif line.startswith("#"):
            flush()
            blocks.append(line.lstrip("#").strip())
            continue
        current.append(line)
        if line.endswith(":") or _looks_like_heading(line):
            flush()
    flush()
    return blocks


def _looks_like_heading(line: str) -> bool:
    # A heading starts with a capital or a number; a short line in lower case is the
    # start of a sentence cut off by the chunk before it.
    if line[-1] in ".!?。！？,;" or line[0].islower():
        return False
    words = line.split()
    return len(words) <= 6 and not _CJK_RUN.search(line)


def _join_wrapped(lines: list[str]) -> str:
    joined = lines[0]
    for line in lines[1:]:
        # CJK lines wrap without a space between them; Latin lines need one back.
        if _CJK_RUN.fullmatch(joined[-1]) and _CJK_RUN.match(line):
            joined += line
        elif joined.endswith("-") and not joined.endswith(" -") and line[:1].islower():
            joined = joined[:-1] + line  # A word hyphenated across the line break.
        else:
            joined += " " + line
    return joined


def _split_block(block: str) -> list[str]:
    pieces: list[str] = []
    start = 0
    for match in _sentence_ends(block):
        end = match.end()
        if _is_sentence_end(block, match):
            pieces.append(block[start:end].strip())
            start = end
    pieces.append(block[start:].strip())
    return [piece for piece in pieces if piece]


def _sentence_ends(block: str) -> list[re.Match[str]]:
    matches = list(_LATIN_END.finditer(block)) + list(_CJK_END.finditer(block))
    return sorted(matches, key=lambda m: m.start())


def _is_sentence_end(block: str, match: re.Match[str]) -> bool:
    if _CJK_END.fullmatch(match.group()):
        return True
    following = block[match.end() : match.end() + 1]
    if not following:
        return True
    if following.islower():
        # "approx. the", "e.g. a": a lower-case word after a period continues the sentence.
        return False
    if match.group().startswith("."):
        word = block[: match.start()].rsplit(None, 1)[-1].lower() if block[: match.start()].strip() else ""
        word = word.lstrip("([\"'“")
        if word in _ABBREVIATIONS and word != "etc":
            return False
        if len(word) == 1 and word.isalpha():
            return False  # an initial, as in "J. Smith"
    return True


# ---------------------------------------------------------------- scoring


def terms_of(text: str) -> list[str]:
    """Split text into normalised terms: stemmed words, and character pairs of CJK runs."""
    terms: list[str] = []
    for match in _TERM.finditer(unicodedata.normalize("NFKC", text).lower()):
        token = match.group()
        if _CJK_RUN.fullmatch(token):
            # CJK has no spaces between words; overlapping character pairs stand in for words.
            terms.extend(token[i : i + 2] for i in range(max(1, len(token) - 1)))
        elif token not in _STOPWORDS:
            terms.append(_stem(token))
    return terms


def _stem(word: str) -> str:
    """Strip the commonest English inflections; enough to match "visits" and "visit"."""
    if len(word) <= 3 or not word.isascii():
        return word
    for suffix, replacement in (("ies", "y"), ("sses", "ss"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            if suffix == "s" and word.endswith(("ss", "us", "is")):
                return word
            if suffix == "es" and not word.endswith(("ches", "shes", "xes", "zes", "sses")):
                continue
            return word[: -len(suffix)] + replacement
    return word


def _idf(sentences: Sequence[_Sentence]) -> dict[str, float]:
    document_frequency: Counter[str] = Counter()
    for sentence in sentences:
        document_frequency.update(set(sentence.terms))
    total = len(sentences)
    return {term: math.log(1 + (total - df + 0.5) / (df + 0.5)) for term, df in document_frequency.items()}


def _lexical_score(
    question_terms: set[str], sentence: _Sentence, idf: dict[str, float], default_idf: float
) -> float:
    if not question_terms:
        return 0.0
    sentence_terms = set(sentence.terms) | sentence.source_terms
    matched = 0.0
    possible = 0.0
    for term in question_terms:
        weight = idf.get(term, default_idf)
        possible += weight
        if term in sentence_terms:
            matched += weight
        elif len(term) >= 4 and any(
            t.startswith(term) or (len(t) >= 4 and term.startswith(t)) for t in sentence_terms
        ):
            matched += PREFIX_MATCH_WEIGHT * weight
    score = matched / possible if possible else 0.0
    words = len(sentence.text.split()) if not _CJK_RUN.search(sentence.text) else len(sentence.text) // 2
    if words < SHORT_SENTENCE_WORDS:
        score *= words / SHORT_SENTENCE_WORDS
    return score


def _any_question_word(question: str, sentences: Sequence[_Sentence]) -> bool:
    """Tell whether a sentence contains a question term, by the lexical score's matching rules.

    A question made of stopwords only has no terms to look for, so it passes.
    """
    question_terms = set(terms_of(question))
    if not question_terms:
        return True
    no_idf: dict[str, float] = {}
    return any(
        _lexical_score(question_terms, replace(sentence, source_terms=frozenset()), no_idf, 1.0) > 0
        for sentence in sentences
    )


def _sentences_of(fact_index: int, fact: Fact) -> list[_Sentence]:
    texts = split_sentences(fact.text)
    source_terms = _source_terms(fact.source_name)
    sentences = []
    for position, text in enumerate(texts):
        # Chunks start and end wherever the token limit falls, often inside a sentence:
        # a first piece starting in lower case, or a long last piece without end punctuation.
        cut_start = position == 0 and text[:1].islower()
        cut_end = position == len(texts) - 1 and text[-1] not in ".!?:;。！？\"'”’)" and len(text.split()) > 6
        sentences.append(
            _Sentence(fact_index, position, text, tuple(terms_of(text)), source_terms, cut_start or cut_end)
        )
    return sentences


def _source_terms(source_name: str) -> frozenset[str]:
    stem = source_name.rsplit(".", 1)[0] if "." in source_name else source_name
    return frozenset(terms_of(stem.replace("_", " ").replace("-", " ")))


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


def _pages_label(pages: Sequence[int]) -> str:
    if not pages:
        return ""
    ordered = sorted(set(pages))
    if len(ordered) == 1:
        return f", page {ordered[0]}"
    if ordered == list(range(ordered[0], ordered[-1] + 1)):
        return f", pages {ordered[0]}-{ordered[-1]}"
    return ", pages " + ", ".join(str(page) for page in ordered)


# ---------------------------------------------------------------- answerer


class ExtractiveTextGenerator:
    """Answers by quoting the facts' most relevant sentences; implements the `TextGenerator` port.

    Retrieval calls `answer` or `stream_answer` with the facts, because extraction
    needs them apart from any prompt. `generate` exists for the port and raises.
    """

    model_id = "extractive"
    extractive = True

    def __init__(self, settings: Settings, *, embedder: EmbeddingGenerator | None = None) -> None:
        """
        Args:
            settings: `text_generation.max_prompt_tokens` bounds the facts retrieval passes in.
            embedder: Adds the question-sentence similarity to the score when given.
        """
        # Retrieval sizes the facts it selects with this, as it does for a language model's prompt.
        self.max_tokens = settings.text_generation.max_prompt_tokens
        self._encoding = settings.partitioning.encoding
        self._embedder = embedder

    def generate(self, prompt: str, *, max_tokens: int, temperature: float) -> AsyncIterator[str]:
        """Raise: extraction quotes facts, so it cannot continue a free-form prompt."""
        raise PermanentError(
            "the extractive answerer cannot complete a prompt: it needs the question and the facts, "
            "so call answer() or stream_answer(), or configure a language model with KM_TEXT_GENERATION__TYPE"
        )

    async def answer(self, question: str, facts: Sequence[Fact], *, max_tokens: int) -> str:
        """Return the best sentences of `facts` for `question` in at most `max_tokens` tokens.

        Returns an empty string when there are no facts or no sentence in them.

        Raises:
            InvalidRequestError: `max_tokens` is too small for the header and one sentence.
        """
        return "".join([piece async for piece in self.stream_answer(question, facts, max_tokens=max_tokens)])

    async def stream_answer(
        self, question: str, facts: Sequence[Fact], *, max_tokens: int
    ) -> AsyncIterator[str]:
        """Yield the answer of `answer` piece by piece: the header line, then one line per sentence."""
        lines = await self._answer_lines(question, facts, max_tokens=max_tokens)
        if not lines:
            return
        yield EXTRACTIVE_HEADER
        for line in lines:
            yield "\n" + line

    async def _answer_lines(self, question: str, facts: Sequence[Fact], *, max_tokens: int) -> list[str]:
        sentences = [sentence for index, fact in enumerate(facts) for sentence in _sentences_of(index, fact)]
        if not sentences:
            return []
        if not _any_question_word(question, sentences):
            logger.info("extractive answer: no sentence of %d facts contains a word of the question", len(facts))
            return []

        from kernel_memory.partitioning import get_tokenizer

        count = get_tokenizer(self._encoding).count
        budget = max_tokens - count(EXTRACTIVE_HEADER)
        if budget < MIN_ANSWER_TOKENS:
            raise InvalidRequestError(
                f"max_tokens={max_tokens} leaves no room for an extractive answer: "
                f"allow at least {count(EXTRACTIVE_HEADER) + MIN_ANSWER_TOKENS} tokens"
            )

        scores = await self._score(question, facts, sentences, count=count)
        chosen = self._choose(sentences, scores, facts, budget=budget, count=count)

        # Token counts of joined lines can differ from the sum of their parts by a token
        # at the joins, so check the whole answer and drop the weakest lines if needed.
        while chosen and count(EXTRACTIVE_HEADER + "".join("\n" + line for _, line in chosen)) > max_tokens:
            chosen.pop()

        chosen.sort(key=lambda item: (item[0].fact_index, item[0].position))
        return [line for _, line in chosen]

    async def _score(
        self,
        question: str,
        facts: Sequence[Fact],
        sentences: Sequence[_Sentence],
        *,
        count: Callable[[str], int],
    ) -> list[float]:
        idf = _idf(sentences)
        # A question term no fact contains is as rare as it gets.
        default_idf = math.log(1 + (len(sentences) + 0.5) / 0.5)
        question_terms = set(terms_of(question))
        asks_quantity = bool(_QUANTITY_QUESTION.search(question))

        scores = []
        for sentence in sentences:
            score = LEXICAL_WEIGHT * _lexical_score(question_terms, sentence, idf, default_idf)
            score += RELEVANCE_WEIGHT * max(0.0, min(1.0, facts[sentence.fact_index].relevance))
            if asks_quantity and _NUMBER.search(sentence.text):
                score += QUANTITY_BONUS
            scores.append(score)

        if self._embedder is not None and question.strip():
            limit = self._embedder.max_input_tokens
            ranked = sorted(range(len(sentences)), key=lambda i: -scores[i])
            candidates = [i for i in ranked[:EMBEDDING_CANDIDATES] if count(sentences[i].text) <= limit]
            if not candidates:
                return scores
            query_vector = await self._embedder.embed_query(question)
            vectors = await self._embedder.embed_documents([sentences[i].text for i in candidates])
            similarities = [_cosine(query_vector, vector) for vector in vectors]
            # Models such as E5 give any two texts a cosine of 0.7 or more, so the
            # similarities are rescaled to 0..1 among the candidates to tell them apart.
            low, high = min(similarities), max(similarities)
            span = high - low or 1.0
            for index, similarity in zip(candidates, similarities, strict=True):
                scores[index] += EMBEDDING_WEIGHT * (similarity - low) / span
        return scores

    def _choose(
        self,
        sentences: Sequence[_Sentence],
        scores: Sequence[float],
        facts: Sequence[Fact],
        *,
        budget: int,
        count: Callable[[str], int],
    ) -> list[tuple[_Sentence, str]]:
        chosen: list[tuple[_Sentence, str]] = []
        seen: set[str] = set()
        ranked = sorted(range(len(sentences)), key=lambda i: (-scores[i], i))
        # A piece of a sentence cut off by the chunk's edge reads badly, so it is
        # quoted only when the facts contain nothing else.
        whole = [i for i in ranked if not sentences[i].fragment]
        ranked = whole or ranked
        cutoff = RELATIVE_SCORE_CUTOFF * scores[ranked[0]]
        for index in ranked:
            if scores[index] < cutoff:
                break
            sentence = sentences[index]
            # Overlapping partitions and near-identical documents repeat sentences; quote each once.
            key = " ".join(sentence.terms) or sentence.text
            if key in seen:
                continue
            fact = facts[sentence.fact_index]
            source = f" ({fact.source_name}{_pages_label(fact.page_numbers)})" if fact.source_name else ""
            line = f"- {sentence.text}{source}"
            cost = count("\n" + line)
            if cost > budget:
                if chosen:
                    continue
                # The best sentence is quoted even when it is longer than the budget, cut to fit,
                # and without its source if a long file name leaves too little room.
                if count("\n- " + source) + MIN_TRIMMED_TOKENS > budget:
                    source = ""
                line = self._trim(sentence.text, source, budget=budget, count=count)
                cost = count("\n" + line)
            chosen.append((sentence, line))
            seen.add(key)
            budget -= cost
            if budget < MIN_TRIMMED_TOKENS:
                break
        return chosen

    def _trim(self, text: str, source: str, *, budget: int, count: Callable[[str], int]) -> str:
        """Cut the best sentence to fit when even it is longer than the whole budget."""
        low, high = 0, len(text)
        # Longest prefix, in characters, whose line fits; a binary search needs few token counts.
        while low < high:
            middle = (low + high + 1) // 2
            if count(f"\n- {text[:middle]} …{source}") <= budget:
                low = middle
            else:
                high = middle - 1
        prefix = text[:low]
        space = prefix.rfind(" ")
        if space > len(prefix) * 0.8:
            prefix = prefix[:space]  # end on a word boundary when one is near
        return f"- {prefix.rstrip()} …{source}"

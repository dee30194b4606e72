"""Filter normalisation and tag rows; matching against SQLite is covered in test_memorydb_sqlite."""

from __future__ import annotations

import json

import pytest

from kernel_memory.errors import InvalidRequestError
from kernel_memory.memorydb.filters import filters_parameter, normalize_filters, tag_rows
from kernel_memory.memorydb.names import normalize_index_name


def test_normalize_filters_none_and_empty() -> None:
    assert normalize_filters(None) is None
    assert normalize_filters([]) is None
    assert normalize_filters([{}]) is None
    assert normalize_filters([{"a": ["1"]}, {"b": []}]) is None


def test_normalize_filters_sorted_distinct_pairs() -> None:
    assert normalize_filters([{"b": ["2", "2"], "a": ["1"]}]) == [(("a", "1"), ("b", "2"))]


def test_normalize_filters_drops_repeated_filter() -> None:
    assert normalize_filters([{"a": ["1"]}, {"a": ["1"]}]) == [(("a", "1"),)]


def test_normalize_filters_bare_string_is_one_value() -> None:
    assert normalize_filters([{"colors": "red,white"}]) == [(("colors", "red,white"),)]  # type: ignore[dict-item]


def test_normalize_filters_rejects_number() -> None:
    with pytest.raises(InvalidRequestError, match="must be strings"):
        normalize_filters([{"year": [2024]}])  # type: ignore[list-item]


def test_normalize_filters_rejects_non_dict() -> None:
    with pytest.raises(InvalidRequestError, match="maps tag keys"):
        normalize_filters(["colors:red"])  # type: ignore[list-item]


def test_filters_parameter_is_json() -> None:
    parameter = filters_parameter([(("file", "Team's Menu.pdf"), ("period", "Q1'24"))])
    assert json.loads(parameter) == [[["file", "Team's Menu.pdf"], ["period", "Q1'24"]]]


def test_tag_rows_skip_values_missing() -> None:
    assert tag_rows({"a": ["1", "1"], "b": [None], "c": []}) == [("a", "1")]  # type: ignore[list-item]


def test_index_name_empty_is_default() -> None:
    assert normalize_index_name(None) == "default"
    assert normalize_index_name("  ") == "default"


def test_index_name_lowercased() -> None:
    assert normalize_index_name(" My-Index_2 ") == "my-index_2"


@pytest.mark.parametrize("name", ["a", "a-", "km-docs_2024", "0_1-2"])
def test_index_name_valid(name: str) -> None:
    assert normalize_index_name(name) == name


def test_index_name_invalid_names_the_value() -> None:
    with pytest.raises(InvalidRequestError, match="team's"):
        normalize_index_name("team's")

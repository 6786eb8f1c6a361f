"""The ``tenant_fixtures`` marker: what it accepts, and how each mistake is refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tenancy_fixtures.testing.marker import MarkedTenant, read_marker

HERE = Path("/suite/tests")


def read(*args: Any, **kwargs: Any) -> MarkedTenant:
    return read_marker(args, kwargs, lambda path: HERE / path)


def refusal(*args: Any, **kwargs: Any) -> str:
    with pytest.raises(pytest.UsageError) as raised:
        read(*args, **kwargs)
    message = str(raised.value)
    assert "it takes @pytest.mark.tenant_fixtures(path, *, tier='free'" in message
    return message


def test_a_path_given_as_argument_or_keyword_is_resolved_beside_the_test_file() -> None:
    assert HERE / "fixtures/acme" == read("fixtures/acme").fixtures
    assert HERE / "fixtures/acme" == read(path="fixtures/acme").fixtures


def test_every_keyword_reaches_the_tenant_it_describes() -> None:
    marked = read(
        "set",
        tier="pro",
        features=["ai_models"],
        limits={"max_rows": 10},
        format="table-files",
        options={"x": 1},
        shared=True,
    )

    assert ("pro", ("ai_models",), {"max_rows": 10}) == (
        marked.tier,
        marked.features,
        marked.limits,
    )
    assert ("table-files", {"x": 1}, True) == (marked.format, marked.options, marked.shared)


def test_a_marker_naming_no_set_is_refused_saying_so() -> None:
    assert "no fixture set named" in refusal(tier="pro")


def test_an_empty_path_is_refused_not_read_as_the_test_files_folder() -> None:
    assert "an empty path" in refusal("")
    assert "an empty path" in refusal(path="  ")


def test_a_path_given_twice_or_two_paths_are_refused() -> None:
    assert "given twice" in refusal("a", path="b")
    assert "one path, not 2 arguments" in refusal("a", "b")


def test_a_misspelled_keyword_is_refused_with_the_likely_one() -> None:
    message = refusal("set", teir="pro")

    assert "unknown keyword teir='pro' (did you mean tier=?)" in message


def test_features_given_as_one_string_are_refused_not_read_as_characters() -> None:
    assert "features must be a list of feature names, not 'ai_models'" in refusal(
        "set", features="ai_models"
    )


@pytest.mark.parametrize(
    ("keyword", "value", "wanted"),
    [
        ("tier", 3, "tier must be a str, not int 3"),
        ("limits", ["max_rows"], "limits must be a mapping"),
        ("format", 1, "format must be a format name or None"),
        ("options", "user_id=1", "options must be a mapping or None"),
        ("shared", "yes", "shared must be True, False or None, not str 'yes'"),
        ("features", [1], "each feature must be a str, not int 1"),
        ("path", 7, "path must be a str or a Path, not int 7"),
    ],
)
def test_a_keyword_of_the_wrong_type_is_refused_naming_it(
    keyword: str, value: Any, wanted: str
) -> None:
    kwargs = {keyword: value} if keyword == "path" else {"path": "set", keyword: value}

    assert wanted in refusal(**kwargs)

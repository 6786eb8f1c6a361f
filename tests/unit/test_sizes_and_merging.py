"""Storage sizes (``parse_size``/``format_size``) and config layering (``deep_merge``)."""

# Asserts are written `expected == actual`, the suite's style.

from __future__ import annotations

import copy
from typing import Any

import pytest

from tenancy_fixtures.tenancy.merging import deep_merge
from tenancy_fixtures.tenancy.sizes import format_size, parse_size

KB = 1024
MB = 1024**2
GB = 1024**3
TB = 1024**4


class TestParseSize:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            pytest.param("100GB", 100 * GB, id="100GB"),
            pytest.param("1.5 TB", int(1.5 * TB), id="1.5-space-TB"),
            pytest.param("512", 512, id="bare-number-is-bytes"),
            pytest.param("0", 0, id="zero"),
            pytest.param("1B", 1, id="bytes-unit"),
            pytest.param("1KB", KB, id="KB-is-binary"),
            pytest.param("2MB", 2 * MB, id="MB"),
            pytest.param("10TB", 10 * TB, id="TB"),
            pytest.param("100gb", 100 * GB, id="lowercase-unit"),
            pytest.param("3Mb", 3 * MB, id="mixed-case-unit"),
            pytest.param("  7 kb  ", 7 * KB, id="surrounding-spaces"),
            pytest.param("0.5KB", 512, id="fraction"),
            pytest.param("9007199254740993B", 2**53 + 1, id="past-2**53-exactly"),
            pytest.param("8388609.0000000001TB", None, id="past-float-precision-not-whole"),
        ],
    )
    def test_a_size_string_is_read_as_bytes(self, text: str, expected: int | None) -> None:
        """Size strings are read with binary units, any case, optional spaces, exactly
        (through a float, 2**53 + 1 bytes came back as 2**53, and a fraction of a byte
        past float precision was taken as whole); ``None``: refused, not whole bytes."""
        if expected is None:
            with pytest.raises(ValueError, match="not a whole number of bytes"):
                parse_size(text)
        else:
            assert expected == parse_size(text)

    @pytest.mark.parametrize("value", [0, 1, 1024, 10 * TB])
    def test_an_int_is_taken_as_bytes(self, value: int) -> None:
        """An int is already bytes and comes back unchanged."""
        assert value == parse_size(value)

    @pytest.mark.parametrize(
        ("value", "message"),
        [
            pytest.param("-1GB", "must not be negative", id="negative-string"),
            pytest.param(" -5", "must not be negative", id="negative-bare"),
            pytest.param(-1, "must not be negative", id="negative-int"),
            pytest.param("10XB", "unknown unit 'XB'", id="unknown-unit-XB"),
            pytest.param("10GiB", "unknown unit 'GiB'", id="iec-unit-GiB"),
            pytest.param("10PB", "unknown unit 'PB'", id="unknown-unit-PB"),
            pytest.param("", "expected a size", id="empty"),
            pytest.param("GB", "expected a size", id="unit-only"),
            pytest.param("lots", "expected a size", id="word"),
            pytest.param("1e3", "expected a size", id="exponent"),
            pytest.param("1,000", "expected a size", id="thousands-separator"),
            pytest.param("1.2.3GB", "expected a size", id="two-dots"),
            pytest.param("10 G B", "expected a size", id="split-unit"),
            pytest.param("nan", "expected a size", id="nan"),
            pytest.param(True, "not a boolean", id="true"),
            pytest.param(False, "not a boolean", id="false"),
            pytest.param(1.5, "not float", id="float"),
            pytest.param(None, "not NoneType", id="none"),
        ],
    )
    def test_a_bad_size_is_refused(self, value: Any, message: str) -> None:
        """Negative numbers, unknown units, garbage and non-sizes raise ValueError."""
        with pytest.raises(ValueError, match=message):
            parse_size(value)


class TestFormatSize:
    @pytest.mark.parametrize(
        ("size", "expected"),
        [
            pytest.param(0, "0B", id="zero"),
            pytest.param(512, "512B", id="bytes"),
            pytest.param(KB, "1KB", id="1KB"),
            pytest.param(1536, "1.5KB", id="fractional-KB"),
            pytest.param(100 * GB, "100GB", id="100GB"),
            pytest.param(1536 * GB, "1536GB", id="exact-GB-beats-fractional-TB"),
            pytest.param(10 * TB, "10TB", id="10TB"),
        ],
    )
    def test_a_size_is_shown_in_the_largest_fitting_unit(self, size: int, expected: str) -> None:
        """Whole multiples use the largest unit; others show one decimal place."""
        assert expected == format_size(size)

    @pytest.mark.parametrize(
        "size", [0, 1, 1023, KB, 1536, 5 * MB, 100 * GB, 1536 * GB, 10 * TB, 3 * TB + 512 * GB]
    )
    def test_format_then_parse_gives_the_same_bytes(self, size: int) -> None:
        """parse_size(format_size(n)) == n for sizes format_size shows exactly."""
        assert size == parse_size(format_size(size))

    @pytest.mark.parametrize("text", ["1GB", "100GB", "512B", "10TB", "1.5KB"])
    def test_parse_then_format_gives_the_same_text(self, text: str) -> None:
        """format_size(parse_size(s)) == s for canonical size strings."""
        assert text == format_size(parse_size(text))


class TestDeepMerge:
    def test_no_layers_give_an_empty_dict(self) -> None:
        """Merging nothing gives {}."""
        assert {} == deep_merge()

    def test_later_scalars_replace_earlier_ones(self) -> None:
        """A scalar in a later layer wins; keys only in one layer are kept."""
        assert {"a": 2, "b": 1, "c": 3} == deep_merge({"a": 1, "b": 1}, {"a": 2, "c": 3})

    def test_nested_mappings_merge_key_by_key(self) -> None:
        """Nested dicts merge at every depth rather than being replaced."""
        defaults = {"limits": {"api": 1, "users": 5, "deep": {"x": 1, "y": 1}}}
        tier = {"limits": {"api": 10, "deep": {"y": 2}}}
        tenant = {"limits": {"users": 7, "deep": {"z": 3}}}

        assert {"limits": {"api": 10, "users": 7, "deep": {"x": 1, "y": 2, "z": 3}}} == (
            deep_merge(defaults, tier, tenant)
        )

    def test_lists_are_replaced_not_concatenated(self) -> None:
        """A list in a later layer replaces the earlier list whole."""
        assert {"tags": ["c"]} == deep_merge({"tags": ["a", "b"]}, {"tags": ["c"]})

    def test_a_scalar_replaces_a_mapping_and_a_mapping_replaces_a_scalar(self) -> None:
        """When types differ, the later layer's value wins whole."""
        assert {"a": 1, "b": {"x": 1}} == deep_merge(
            {"a": {"x": 1}, "b": 2}, {"a": 1, "b": {"x": 1}}
        )

    def test_none_in_a_later_layer_replaces_the_value(self) -> None:
        """None is a value like any other, not 'keep the earlier one'."""
        assert {"a": None} == deep_merge({"a": {"x": 1}}, {"a": None})

    def test_the_inputs_are_not_mutated(self) -> None:
        """Merging leaves every layer exactly as it was."""
        first: dict[str, Any] = {"limits": {"api": 1, "nested": {"x": 1}}, "tags": ["a"]}
        second: dict[str, Any] = {"limits": {"api": 2, "nested": {"y": 2}}, "tags": ["b"]}
        before = (copy.deepcopy(first), copy.deepcopy(second))

        deep_merge(first, second)

        assert before == (first, second)

    def test_changing_the_result_does_not_change_the_inputs(self) -> None:
        """Nested mappings in the result are fresh dicts, not the inputs' own."""
        only: dict[str, Any] = {"limits": {"nested": {"x": 1}}}

        merged = deep_merge(only)
        merged["limits"]["nested"]["x"] = 99
        merged["limits"]["new"] = True

        assert {"limits": {"nested": {"x": 1}}} == only

"""The SDK's batch key check: one pass in C for plain ASCII keys, the per-key check's
errors for anything else."""

from __future__ import annotations

import pytest

from shoal import InvalidArgumentError
from shoal._requests import check_keys


def test_plain_keys_come_back_as_a_list_in_order() -> None:
    assert check_keys(key for key in ("b", "a", "c")) == ["b", "a", "c"]


def test_non_ascii_keys_that_are_valid_text_pass() -> None:
    assert check_keys(["clé", "キー"]) == ["clé", "キー"]


@pytest.mark.parametrize("bad", [b"bytes", 7, None])
def test_a_key_that_is_not_a_string_is_named(bad: object) -> None:
    with pytest.raises(InvalidArgumentError, match="key must be a string") as raised:
        check_keys(["fine", bad])
    assert raised.value.field == "key"


def test_a_lone_surrogate_is_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="not valid Unicode"):
        check_keys(["fine", "\ud800"])


def test_a_str_subclass_is_accepted_as_the_single_key_check_accepts_it() -> None:
    class Name(str):
        pass

    assert check_keys([Name("k")]) == ["k"]

"""The SDK's sketch surface: pinned names, and the wire form each batch takes."""

from __future__ import annotations

import array
import functools
import inspect
import pickle

import numpy as np
import orjson
import pytest

import shoal
import shoal.sketches
from shoal import InvalidArgumentError
from shoal._sketches import chunks, item_batch
from shoal.sketches import DistinctCount

EXPORTED = [
    "AccuracyReport",
    "AsyncSketches",
    "BloomSummary",
    "CountMinSummary",
    "DistinctCount",
    "Estimate",
    "Frequency",
    "FrequentItem",
    "KindAccuracy",
    "Quantile",
    "QuantileSummary",
    "Rank",
    "ReservoirSample",
    "SketchMapInfo",
    "Sketches",
    "TopItems",
]


def test_the_sketch_names_are_pinned() -> None:
    assert shoal.sketches.__all__ == EXPORTED


def test_the_contract_names_of_the_issue() -> None:
    for client_class, sketches_class in (
        (shoal.Client, shoal.sketches.Sketches),
        (shoal.AsyncClient, shoal.sketches.AsyncSketches),
    ):
        # A class attribute: `Client.sketches` exists before any client does.
        sketches = inspect.getattr_static(client_class, "sketches")
        assert isinstance(sketches, functools.cached_property)
        for method in ("create", "add", "estimate", "merge_estimate", "export", "accuracy"):
            assert callable(getattr(sketches_class, method)), (sketches_class, method)
        parameters = inspect.signature(sketches_class.create).parameters
        assert list(parameters)[:3] == ["self", "map_name", "kind"]
        assert inspect.signature(sketches_class.add).parameters.keys() >= {
            "map_name",
            "key",
            "items",
        }


def test_strings_travel_nul_separated() -> None:
    batch = item_batch(["a", "b", "é"], None)
    assert batch.WhichOneof("encoding") == "nul_separated"
    assert batch.nul_separated == "a\x00b\x00é".encode()


def test_numbers_travel_as_doubles_for_kll_only() -> None:
    assert item_batch([1, 2.5], "kll").float64_le == array.array("d", [1, 2.5]).tobytes()
    values = np.arange(4, dtype=np.int32)
    assert item_batch(values, "kll").float64_le == values.astype("<f8").tobytes()
    # Elsewhere an int stays an int: it hashes as its decimal text.
    assert orjson.loads(item_batch([1, 2.5], "hll").json) == [1, 2.5]
    assert orjson.loads(item_batch(values, "hll").json) == [0, 1, 2, 3]


def test_other_batches_travel_as_json() -> None:
    for items in (["a", 1], ["with\x00nul", "b"], [b"\x01"], []):
        assert item_batch(items, None).WhichOneof("encoding") == "json"
    assert orjson.loads(item_batch([b"\x01"], None).json) == [{"$bytes": "AQ=="}]


def test_single_items_and_lone_surrogates_are_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="wrap a single item"):
        item_batch("abc", None)
    with pytest.raises(InvalidArgumentError, match="lone surrogate"):
        item_batch(["\udc80"], None)


def test_large_batches_are_cut_into_chunks() -> None:
    assert chunks(list(range(5)), 2) == [[0, 1], [2, 3], [4]]
    assert chunks(iter(range(3)), 10) == [[0, 1, 2]]
    with pytest.raises(InvalidArgumentError, match="chunk_items"):
        chunks([1], 0)


def test_a_distinct_count_is_a_number_with_bounds() -> None:
    count = DistinctCount(1000.0, {1: (990.0, 1010.0), 2: (980.0, 1020.0)}, 0.01, 2, 2088)
    assert count == 1000.0 and count.value == 1000.0 and count + 1 == 1001.0
    assert (count.lower_bound, count.upper_bound) == (980.0, 1020.0)
    assert count.standard_error == pytest.approx(10.0)
    copied = pickle.loads(pickle.dumps(count))
    assert copied.intervals == count.intervals and copied.memory_bytes == 2088
    assert "95% in [980.0, 1020.0]" in repr(count)

"""Bad sketch parameters, wrong kinds and bad items get INVALID_ARGUMENT with the reason."""

from __future__ import annotations

import math

import pytest

from shoal import Client, InvalidArgumentError, NotFoundError
from shoal.v1 import admin_pb2

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("kind", "params", "field", "reason"),
    [
        ("hll", {"lg_k": 3}, "lg_k", "must be from 4 to 21, not 3"),
        ("hll", {"lg_k": 12.5}, "lg_k", "must be an integer"),
        ("hll", {"width": 10}, "width", "unknown parameter for hll"),
        ("cms", {}, "width, depth", "give width and depth, or epsilon and delta"),
        ("cms", {"width": 10, "depth": 2, "epsilon": 0.1}, "epsilon, delta", "not both"),
        ("bloom", {"capacity_items": 100, "error_rate": 1.5}, "error_rate", "between 0 and 1"),
        ("reservoir", {}, "k", "required"),
        ("reservoir", {"k": 100_000}, "k", "above sketch_bytes_max"),
        ("kll", {"k": 4}, "k", "must be from 8 to 65535"),
        ("topk", {"lg_max_k": 3, "k": 7}, "k", "must be from 1 to 6"),
        ("hyperloglog", {}, "kind", "unknown kind 'hyperloglog'; one of hll, cms"),
    ],
)
def test_bad_parameters_are_refused_with_the_parameter_and_reason(
    client: Client, map_name: str, kind: str, params: dict, field: str, reason: str
) -> None:
    with pytest.raises(InvalidArgumentError, match=reason) as raised:
        client.sketches.create(map_name, kind=kind, **params)
    assert raised.value.field == field
    assert map_name not in [item.name for item in client.list_maps()]


def test_queries_of_the_wrong_kind_are_refused(client: Client, map_name: str) -> None:
    client.sketches.create(map_name, kind="hll")
    client.sketches.add(map_name, "k", ["a"])
    for call, name in [
        (lambda: client.sketches.quantiles(map_name, "k"), "quantiles needs a kll sketch, not hll"),
        (lambda: client.sketches.rank(map_name, "k", 1.0), "rank needs a kll sketch"),
        (lambda: client.sketches.frequency(map_name, "k", "a"), "needs a cms or topk sketch"),
        (lambda: client.sketches.contains(map_name, "k", "a"), "needs a bloom sketch"),
        (lambda: client.sketches.top(map_name, "k"), "top needs a topk sketch"),
        (lambda: client.sketches.sample(map_name, "k"), "sample needs a reservoir sketch"),
    ]:
        with pytest.raises(InvalidArgumentError, match=name) as raised:
            call()
        assert raised.value.field == "kind"


def test_bad_items_are_refused_naming_the_item(client: Client, map_name: str) -> None:
    numbers, strings = f"{map_name}_kll", f"{map_name}_hll"
    client.sketches.create(numbers, kind="kll")
    client.sketches.create(strings, kind="hll")
    cases = [
        (numbers, [1.0, "fast"], "str is not a number: kll takes numbers"),
        (numbers, [1.0, math.nan], "NaN has no place in an order"),
        (strings, ["a", True], "a bool is not an item"),
        (strings, ["a", ["nested"]], "list is not an item"),
    ]
    for target, items, reason in cases:
        with pytest.raises(InvalidArgumentError, match=reason) as raised:
            client.sketches.add(target, "k", items)
        assert raised.value.field == "items"
        assert "(item 1 of the batch)" in raised.value.message
    assert client.sketches.export(numbers, "k") is None
    assert client.sketches.export(strings, "k") is None


def test_sketch_maps_take_only_sketch_writes(client: Client, map_name: str) -> None:
    plain = f"{map_name}_plain"
    client.sketches.create(map_name, kind="hll")
    client.create_map(plain)
    with pytest.raises(InvalidArgumentError, match="holds sketches") as raised:
        client.put(map_name, "k", {"not": "a sketch"})
    assert raised.value.field == "map"
    with pytest.raises(InvalidArgumentError, match="is not a sketch map"):
        client.sketches.add(plain, "k", ["a"])
    with (
        pytest.raises(InvalidArgumentError, match="is not a sketch map"),
        client.transaction() as tx,
    ):
        tx.sketch_add(plain, "k", "a")
    with pytest.raises(InvalidArgumentError, match="is not a sketch map"):
        client.sketches.estimate(plain, "k")
    with pytest.raises(NotFoundError, match="does not exist"):
        client.sketches.estimate(f"{map_name}_missing", "k")
    with pytest.raises(InvalidArgumentError, match="create sketch maps through the Sketches"):
        client._call(
            lambda stubs: stubs.admin.CreateMap,
            admin_pb2.CreateMapRequest(name=f"{map_name}_x", sketch_json=b'{"kind": "hll"}'),
            idempotent=False,
        )
    # Deleting a sketch key is allowed, and drops the sketch.
    client.sketches.add(map_name, "k", ["a"])
    assert client.delete(map_name, "k") is True
    assert client.sketches.export(map_name, "k") is None


def test_client_side_mistakes_are_caught_before_sending(client: Client, map_name: str) -> None:
    client.sketches.create(map_name, kind="hll")
    with pytest.raises(InvalidArgumentError, match="wrap a single item in a list"):
        client.sketches.add(map_name, "k", "single-string")
    with pytest.raises(InvalidArgumentError, match="at least one key"):
        client.sketches.merge_estimate(map_name, [])
    assert client.sketches.add(map_name, "k", []) == 0

"""Answers from stored sketch bytes in one call: what the SQL engine's functions call.

``sketch_answer(spec, data, "hll_estimate")`` reads the bytes a sketch map holds for a
key (``None`` for an absent key, answered as an empty sketch) and returns a plain
value; ``sketch_union_answer(spec, [data, ...], "hll_estimate")`` first merges the
sketches (the union an aggregate such as ``hll_union_estimate`` needs). ``spec`` is a
``SketchSpec`` or the catalog's ``MapDefinition.sketch`` mapping. Errors are
``InvalidArgument`` naming the function or argument at fault.

========================= ====== ===============================================
function                  kind   answer
========================= ====== ===============================================
hll_estimate              hll    distinct count (float)
hll_lower_bound(sd)       hll    lower bound at 1, 2 or 3 standard deviations
hll_upper_bound(sd)       hll    upper bound at 1, 2 or 3 standard deviations
cms_frequency(item)       cms    estimated count of item (never below the truth)
topk_frequency(item)      topk   estimated count of item
topk_items(k)             topk   the k heaviest items (list of str), heaviest first
bloom_contains(item)      bloom  False if item was never added (bool)
kll_quantile(rank)        kll    value at a normalized rank in [0, 1]
kll_rank(value)           kll    fraction of items at or below value
reservoir_sample          res.   the sampled items (list of JSON values)
items_seen                any    items added (None for hll, which does not keep it)
========================= ====== ===============================================
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from coordinator.sketches.apply import load_sketch
from grid.errors import InvalidArgument
from grid.sketches import Sketch, SketchError, SketchKind, SketchSpec, merge_all

_STANDARD_DEVIATIONS_DEFAULT = 2


def _hll_bound(lower: bool) -> Callable[..., float]:
    def bound(sketch: Sketch, deviations: int = _STANDARD_DEVIATIONS_DEFAULT) -> float:
        interval = sketch.distinct_count().interval(int(deviations))
        return interval.lower if lower else interval.upper

    return bound


SQL_FUNCTIONS: dict[str, tuple[SketchKind | None, Callable[..., Any]]] = {
    "hll_estimate": (SketchKind.HYPERLOGLOG, lambda sketch: sketch.distinct_count().estimate),
    "hll_lower_bound": (SketchKind.HYPERLOGLOG, _hll_bound(lower=True)),
    "hll_upper_bound": (SketchKind.HYPERLOGLOG, _hll_bound(lower=False)),
    "cms_frequency": (SketchKind.COUNT_MIN, lambda sketch, item: sketch.frequency(item).estimate),
    "topk_frequency": (SketchKind.TOP_K, lambda sketch, item: sketch.frequency(item).estimate),
    "topk_items": (
        SketchKind.TOP_K,
        lambda sketch, k=None: [item.item for item in sketch.top(k).items],
    ),
    "bloom_contains": (SketchKind.BLOOM, lambda sketch, item: sketch.might_contain(item)),
    "kll_quantile": (SketchKind.KLL, lambda sketch, rank: sketch.quantile(rank).value),
    "kll_rank": (SketchKind.KLL, lambda sketch, value: sketch.rank(value).rank),
    "reservoir_sample": (SketchKind.RESERVOIR, lambda sketch: list(sketch.sample().items)),
    "items_seen": (None, lambda sketch: sketch.items_seen()),
}


def _spec(spec: SketchSpec | Mapping[str, Any]) -> SketchSpec:
    if isinstance(spec, SketchSpec):
        return spec
    try:
        return SketchSpec.from_dict(spec)
    except SketchError as error:
        raise InvalidArgument(f"not a sketch map's spec: {error}", field="spec") from None


def _answer(sketch: Sketch, function: str, arguments: tuple[Any, ...]) -> Any:
    found = SQL_FUNCTIONS.get(function)
    if found is None:
        raise InvalidArgument(
            f"unknown sketch function {function!r}; one of {', '.join(sorted(SQL_FUNCTIONS))}",
            field="function",
        )
    kind, answer = found
    if kind is not None and sketch.kind is not kind:
        raise InvalidArgument(
            f"{function} needs a {kind.value} sketch, not {sketch.kind.value}", field="function"
        )
    try:
        return answer(sketch, *arguments)
    except SketchError as error:
        raise InvalidArgument(f"{function}: {error}", field="function") from None
    except TypeError as error:
        raise InvalidArgument(f"{function}: wrong arguments: {error}", field="function") from None


def sketch_answer(
    spec: SketchSpec | Mapping[str, Any],
    data: bytes | None,
    function: str,
    *arguments: Any,
    rng: random.Random | None = None,
) -> Any:
    """Answer `function` from one stored sketch (None: an absent key, an empty sketch)."""
    checked = _spec(spec)
    # Only a reservoir needs an rng, and only to add items later; answers draw nothing.
    sketch = load_sketch(checked, data, rng or random.Random(0))
    return _answer(sketch, function, arguments)


def sketch_union_answer(
    spec: SketchSpec | Mapping[str, Any],
    data: Iterable[bytes | None],
    function: str,
    *arguments: Any,
    rng: random.Random | None = None,
) -> Any:
    """Answer `function` from the union of stored sketches (an aggregate over keys)."""
    checked = _spec(spec)
    draws = rng or random.Random(0)
    sketches = [load_sketch(checked, item, draws) for item in data if item is not None]
    return _answer(merge_all(checked, sketches, rng=draws), function, arguments)

"""The participant's sketch hook: merges one batch of items into the sketch stored at a key.

A SKETCH_ADD write is applied as ``new = sketch(current) + batch``: the hook reads the
stored bytes (or starts an empty sketch), adds the batch with the library's batch
update, and returns the serialized result. It runs inside the partition's atomic step,
at prepare (to check the batch) and again at commit, so it must give the same verdict
both times: it fails only for reasons fixed by the batch and the spec, never by the
stored state, and the stored state of every spec has a size bound checked when the
map was created.
"""

from __future__ import annotations

import random
import threading

from coordinator.sketches.items import PACKED_STRINGS, Items, decode_items
from grid.catalog import Catalog, MapDefinition
from grid.errors import FailedPrecondition, InvalidArgument
from grid.sketches import (
    HyperLogLogSketch,
    Sketch,
    SketchError,
    SketchFormatError,
    SketchKind,
    SketchSpec,
    deserialize_sketch,
    new_sketch,
)


class SpecCache:
    """The parsed spec of each sketch map, re-read when the catalog's definition changes."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self._specs: dict[str, tuple[MapDefinition, SketchSpec]] = {}
        self._lock = threading.Lock()

    def spec(self, map_name: str) -> SketchSpec:
        """The spec of a sketch map: NotFound for no map, InvalidArgument for a map of values."""
        definition = self._catalog.get(map_name)
        if definition.sketch is None:
            raise InvalidArgument(
                f"map '{map_name}' is not a sketch map; create it with sketches.create",
                field="map",
            )
        cached = self._specs.get(map_name)
        if cached is not None and cached[0] is definition:
            return cached[1]
        spec = SketchSpec.from_dict(definition.sketch)
        with self._lock:
            self._specs[map_name] = (definition, spec)
        return spec


class SketchApplier:
    """The ``sketch_apply`` hook of every participant (see grid.participant)."""

    def __init__(self, specs: SpecCache, rng: random.Random) -> None:
        self._specs = specs
        # Only a reservoir draws from it; passed in so a seeded run replays.
        self._rng = rng

    def __call__(self, map_name: str, current: bytes | None, items_value: bytes) -> bytes:
        spec = self._specs.spec(map_name)
        packed_texts = items_value[:1] == bytes((PACKED_STRINGS,))
        if packed_texts and spec.kind is SketchKind.HYPERLOGLOG:
            # Straight from the packed bytes: no Python string per item.
            sketch = load_sketch(spec, current, self._rng, map_name)
            # Into a dense sketch any batch takes the vectorized path: the union has the
            # same registers as item-by-item updates would give.
            dense = isinstance(sketch, HyperLogLogSketch) and sketch.is_dense_union()
            try:
                merge_batch(
                    sketch,
                    HyperLogLogSketch.of_packed_texts(spec, items_value[1:], into_dense=dense),
                )
            except SketchError as error:
                raise InvalidArgument(f"items: {error}", field="items") from None
            return sketch.serialize()
        items = decode_items(items_value, spec.kind)
        sketch = load_sketch(spec, current, self._rng, map_name)
        try:
            add_batch(sketch, items)
        except SketchError as error:
            raise InvalidArgument(f"items: {error}", field="items") from None
        return sketch.serialize()


def load_sketch(
    spec: SketchSpec, data: bytes | None, rng: random.Random, map_name: str = ""
) -> Sketch:
    """The stored sketch, or a new empty one; FailedPrecondition for unreadable bytes."""
    if data is None:
        return new_sketch(spec, rng=rng)
    try:
        return deserialize_sketch(spec, data, rng=rng)
    except SketchFormatError as error:
        raise FailedPrecondition(
            f"the sketch stored in map '{map_name}' is not a {spec.kind.value} sketch "
            f"of its spec: {error}",
            field="map",
        ) from None


def add_batch(sketch: Sketch, items: Items) -> None:
    """Add a batch to a sketch, as a merge where that keeps answers order-independent."""
    if sketch.kind is SketchKind.HYPERLOGLOG:
        # A directly updated HLL answers with its HIP estimator, which depends on the
        # order items arrived in; a union answers from the registers alone. Merging
        # each batch's own sketch makes the stored sketch a union, so concurrent adds
        # in any order give the same estimate (and the same bytes once dense).
        batch = sketch.empty_like()
        batch.update_many(items)
        merge_batch(sketch, batch)
        return
    sketch.update_many(items)


def merge_batch(sketch: Sketch, batch: Sketch) -> None:
    """Merge a batch's own sketch into the stored one, leaving the result a union."""
    # HyperLogLogSketch.merge leaves a union that answers from its registers, whatever
    # mode the stored sketch was in (empty, a coupon list or dense).
    sketch.merge(batch)

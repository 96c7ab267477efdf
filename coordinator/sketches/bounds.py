"""The most bytes a sketch of a spec can take: the bound on memory per key of a sketch map.

Each bound follows the kind's serialized layout, so the sketch a key holds never
passes it, whatever is added:

- hll: DataSketches' largest updatable HLL_4 image for lg_k (the compact image we
  store is smaller).
- cms: 24 bytes of preamble and weight, then 8 bytes for each of width x depth counters.
- bloom: a 40-byte header, then one bit per filter bit.
- kll: a level of weight 2^h keeps at most max(8, k (2/3)^h) items and a double count
  holds fewer than 2^64 items (at most 61 levels), so at most 3k + 8 x 61 items of 8
  bytes, plus the level offsets, the minimum and maximum, and the preamble.
- topk: at most 3/4 of 2^lg_max_k items, each a count, a length and at most
  STORED_ITEM_BYTES_MAX bytes of text, after a 48-byte preamble.
- reservoir: a 24-byte header, then for each of k items a tag, a length and at most
  STORED_ITEM_BYTES_MAX bytes of JSON.
"""

from __future__ import annotations

from datasketches import hll_sketch, tgt_hll_type

from coordinator.sketches.items import STORED_ITEM_BYTES_MAX
from grid.errors import InvalidArgument
from grid.sketches import SketchKind, SketchSpec
from grid.sketches._spec import bloom_shape, top_k_capacity

_KLL_LEVELS_MAX = 61
_KLL_LEVEL_WIDTH_MIN = 8


def sketch_bytes_max(spec: SketchSpec) -> int:
    """Return the most bytes one sketch of this spec can serialize to."""
    params = spec.params
    kind = spec.kind
    if kind is SketchKind.HYPERLOGLOG:
        return int(
            hll_sketch.get_max_updatable_serialization_bytes(
                int(params["lg_k"]), tgt_hll_type.HLL_4
            )
        )
    if kind is SketchKind.COUNT_MIN:
        return 24 + 8 * int(params["width"]) * int(params["depth"])
    if kind is SketchKind.BLOOM:
        bits, _ = bloom_shape(int(params["capacity_items"]), float(params["error_rate"]))
        return 40 + (bits + 7) // 8
    if kind is SketchKind.KLL:
        items = 3 * int(params["k"]) + _KLL_LEVEL_WIDTH_MIN * _KLL_LEVELS_MAX
        return 8 * items + 4 * (_KLL_LEVELS_MAX + 1) + 16 + 20
    if kind is SketchKind.TOP_K:
        return 48 + top_k_capacity(int(params["lg_max_k"])) * (12 + STORED_ITEM_BYTES_MAX)
    return 24 + int(params["k"]) * (12 + STORED_ITEM_BYTES_MAX)


def check_fits(spec: SketchSpec, limit_bytes: int) -> int:
    """Return the spec's bound, or raise InvalidArgument naming the parameter that is too large."""
    bound = sketch_bytes_max(spec)
    if bound > limit_bytes:
        parameter = {
            SketchKind.HYPERLOGLOG: "lg_k",
            SketchKind.COUNT_MIN: "width",
            SketchKind.BLOOM: "capacity_items",
            SketchKind.KLL: "k",
            SketchKind.TOP_K: "lg_max_k",
            SketchKind.RESERVOIR: "k",
        }[spec.kind]
        raise InvalidArgument(
            f"{parameter}: a {spec.kind.value} sketch of {dict(spec.params)} may take "
            f"{bound} bytes, above sketch_bytes_max ({limit_bytes} bytes)",
            field=parameter,
        )
    return bound

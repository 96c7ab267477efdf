"""Making, reading and merging sketches of any kind from their spec."""

from __future__ import annotations

import random
from collections.abc import Iterable

from grid.sketches._base import Sketch, require_spec
from grid.sketches._bloom import BloomFilter
from grid.sketches._count_min import CountMinSketch
from grid.sketches._errors import SketchParameterError
from grid.sketches._frequent_items import FrequentItemsSketch
from grid.sketches._hyperloglog import HyperLogLogSketch
from grid.sketches._kll import KllSketch
from grid.sketches._reservoir import ReservoirSketch
from grid.sketches._spec import SketchKind, SketchSpec


def _reservoir_rng(rng: random.Random | None) -> random.Random:
    if rng is None:
        raise SketchParameterError(
            "rng", "a reservoir draws random numbers: pass a random.Random (seeded to replay)"
        )
    return rng


def new_sketch(spec: SketchSpec, *, rng: random.Random | None = None) -> Sketch:
    """Return an empty sketch of a spec; a reservoir needs rng, the other kinds ignore it."""
    if spec.kind is SketchKind.HYPERLOGLOG:
        return HyperLogLogSketch(spec)
    if spec.kind is SketchKind.COUNT_MIN:
        return CountMinSketch(spec)
    if spec.kind is SketchKind.BLOOM:
        return BloomFilter(spec)
    if spec.kind is SketchKind.RESERVOIR:
        return ReservoirSketch(spec, _reservoir_rng(rng))
    if spec.kind is SketchKind.KLL:
        return KllSketch(spec)
    return FrequentItemsSketch(spec)


def deserialize_sketch(
    spec: SketchSpec, data: bytes, *, rng: random.Random | None = None
) -> Sketch:
    """Read a sketch of a spec from bytes that Sketch.serialize wrote.

    Raises SketchFormatError when the bytes are not a sketch of that spec.
    """
    if spec.kind is SketchKind.HYPERLOGLOG:
        return HyperLogLogSketch.deserialize(spec, data)
    if spec.kind is SketchKind.COUNT_MIN:
        return CountMinSketch.deserialize(spec, data)
    if spec.kind is SketchKind.BLOOM:
        return BloomFilter.deserialize(spec, data)
    if spec.kind is SketchKind.RESERVOIR:
        return ReservoirSketch.deserialize(spec, data, _reservoir_rng(rng))
    if spec.kind is SketchKind.KLL:
        return KllSketch.deserialize(spec, data)
    return FrequentItemsSketch.deserialize(spec, data)


def merge_all(
    spec: SketchSpec, sketches: Iterable[Sketch], *, rng: random.Random | None = None
) -> Sketch:
    """Return the union of sketches of one spec, across keys or partitions.

    The inputs are left as they were. A reservoir result draws from rng when given,
    else from the first sketch's rng.
    """
    result: Sketch | None = None
    for sketch in sketches:
        require_spec(spec, sketch)
        if result is None:
            result = new_sketch(spec, rng=rng) if rng is not None else sketch.empty_like()
        result.merge(sketch)
    return result if result is not None else new_sketch(spec, rng=rng)

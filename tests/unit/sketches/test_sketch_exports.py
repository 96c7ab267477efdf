"""The public names of grid.sketches are pinned, so an import never breaks by accident."""

import grid.sketches

EXPORTS = [
    "AccuracyMonitor",
    "AccuracyStats",
    "BloomFill",
    "BloomFilter",
    "CountMinSketch",
    "DistinctCount",
    "Frequency",
    "FrequentItem",
    "FrequentItemsSketch",
    "HyperLogLogSketch",
    "Interval",
    "JsonValue",
    "KllSketch",
    "Quantile",
    "Rank",
    "ReservoirSample",
    "ReservoirSketch",
    "Sketch",
    "SketchError",
    "SketchFormatError",
    "SketchItemError",
    "SketchKind",
    "SketchKindError",
    "SketchParameterError",
    "SketchSpec",
    "TopItems",
    "deserialize_sketch",
    "item_text",
    "merge_all",
    "new_sketch",
]


def test_exports_are_pinned():
    assert sorted(grid.sketches.__all__) == EXPORTS
    for name in EXPORTS:
        assert hasattr(grid.sketches, name), name


def test_error_hierarchy():
    for name in ("SketchParameterError", "SketchKindError", "SketchItemError", "SketchFormatError"):
        assert issubclass(getattr(grid.sketches, name), grid.sketches.SketchError)
    assert issubclass(grid.sketches.SketchError, ValueError)

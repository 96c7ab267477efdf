"""Sketches as grid values: distinct counts, frequencies, membership, samples, quantiles, top-k.

Six kinds, each named in a map's ``SketchSpec``:

========= ============================== ===============================================
kind      answers                        implementation
========= ============================== ===============================================
hll       distinct count                 Apache DataSketches ``hll_sketch`` (HLL_4); packed
                                         batches hashed with numpy (``_hyperloglog_packed``)
cms       frequency of an item           Apache DataSketches ``count_min_sketch``
kll       quantiles and ranks of numbers Apache DataSketches ``kll_doubles_sketch``
topk      the heaviest items             Apache DataSketches ``frequent_strings_sketch``
bloom     "was this item added?"         ours: numpy bits, BLAKE2b double hashing
reservoir a uniform sample of k items    ours: Algorithm L over random tags, seeded rng
========= ============================== ===============================================

The DataSketches kinds serialize to DataSketches' own binary images, as its C++ library
(under the Python binding) writes them; the hll, kll and frequent-items images are the
ones the Java library reads too. bloom and reservoir have versioned formats of their
own, described in their modules. How items become hashable text is fixed in ``_items``.

Every kind shares the ``Sketch`` interface: ``update_many`` (atomic: a bad item changes
nothing), ``merge`` (a commutative union), ``serialize``, ``memory_bytes``,
``items_seen`` and typed answers carrying their error bounds. ``merge_all`` builds a
global answer across keys or partitions from sketches alone, and ``AccuracyMonitor``
measures the observed error on a sample of keys against exact answers.

Errors are ``SketchError`` (a ValueError): ``SketchParameterError`` names the parameter
and reason, ``SketchKindError`` a query asked of the wrong kind, ``SketchItemError`` an
item a kind cannot take, ``SketchFormatError`` bytes that are not a sketch of the spec.
This is a pure library: no I/O, clocks or global randomness.
"""

from grid.sketches._accuracy import AccuracyMonitor, AccuracyStats
from grid.sketches._base import Sketch
from grid.sketches._bloom import BloomFilter
from grid.sketches._count_min import CountMinSketch
from grid.sketches._errors import (
    SketchError,
    SketchFormatError,
    SketchItemError,
    SketchKindError,
    SketchParameterError,
)
from grid.sketches._factory import deserialize_sketch, merge_all, new_sketch
from grid.sketches._frequent_items import FrequentItemsSketch
from grid.sketches._hyperloglog import HyperLogLogSketch
from grid.sketches._items import JsonValue, item_text
from grid.sketches._kll import KllSketch
from grid.sketches._reservoir import ReservoirSketch
from grid.sketches._results import (
    BloomFill,
    DistinctCount,
    Frequency,
    FrequentItem,
    Interval,
    Quantile,
    Rank,
    ReservoirSample,
    TopItems,
)
from grid.sketches._spec import SketchKind, SketchSpec

__all__ = [
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

"""The public names of the SDK's sketch calls: ``client.sketches`` and what it returns.

from shoal.sketches import DistinctCount, QuantileSummary
"""

from shoal._sketch_results import (
    AccuracyReport,
    BloomSummary,
    CountMinSummary,
    DistinctCount,
    Estimate,
    Frequency,
    FrequentItem,
    KindAccuracy,
    Quantile,
    QuantileSummary,
    Rank,
    ReservoirSample,
    SketchMapInfo,
    TopItems,
)
from shoal._sketches import AsyncSketches, Sketches

__all__ = [
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

"""Sketch maps on the server: sketches of grid/sketches as transactional grid values.

- ``maps.SketchMaps``: creating sketch maps (validated specs kept in the catalog),
  adding batches as commutative SKETCH_ADD writes, reading one key's sketch or the
  union of several, exporting the portable bytes.
- ``apply.SketchApplier``: the participant hook that merges a batch into a stored sketch.
- ``items``: the wire forms of a batch (JSON, NUL-separated strings, doubles).
- ``bounds``: the most bytes a sketch of a spec can take.
- ``accuracy.SketchAccuracy``: exact answers for a sample of keys, observed error as metrics.
- ``answers``: one-call answers for the SQL engine (``sketch_answer``, ``sketch_union_answer``).
"""

from coordinator.sketches.answers import SQL_FUNCTIONS, sketch_answer, sketch_union_answer
from coordinator.sketches.maps import SketchMaps, SketchMapView

__all__ = ["SQL_FUNCTIONS", "SketchMapView", "SketchMaps", "sketch_answer", "sketch_union_answer"]

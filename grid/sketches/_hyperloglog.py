"""HyperLogLog distinct counts, on DataSketches' hll_sketch in its 4-bit (HLL_4) mode."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from datasketches import hll_sketch, hll_union, tgt_hll_type

from grid.sketches._base import Items, Sketch
from grid.sketches._errors import SketchFormatError, SketchItemError
from grid.sketches._hyperloglog_packed import hll_8_image, packed_registers
from grid.sketches._items import item_texts
from grid.sketches._results import DistinctCount, Interval
from grid.sketches._spec import SketchKind, SketchSpec

# Four bits a register keeps lg_k=12 under 3 KB; the 6- and 8-bit modes only buy speed.
_TARGET = tgt_hll_type.HLL_4
_MODE_BYTE = 7
_DENSE_MODE = 2
# The image's flags byte; 16 marks a sketch that answers from its registers alone.
_FLAGS_BYTE = 5
_OUT_OF_ORDER_FLAG = 16


class HyperLogLogSketch(Sketch):
    """The hll kind: estimates how many distinct items went in.

    Serialized as DataSketches' compact HLL_4 image, which its C++ and Java libraries
    both read. In its middle (coupon set) mode that image
    lists coupons in hash-table order, so two equal sketches may serialize to
    different bytes: compare their answers, not their bytes.
    """

    kind = SketchKind.HYPERLOGLOG

    def __init__(self, spec: SketchSpec, sketch: hll_sketch | None = None) -> None:
        super().__init__(spec)
        self._lg_k = int(spec.params["lg_k"])
        self._sketch = hll_sketch(self._lg_k, _TARGET) if sketch is None else sketch

    @classmethod
    def deserialize(cls, spec: SketchSpec, data: bytes) -> HyperLogLogSketch:
        """Read DataSketches HLL bytes (any of its modes) as a sketch of this spec."""
        try:
            sketch = hll_sketch.deserialize(bytes(data))
        except (RuntimeError, ValueError, TypeError, IndexError) as error:
            raise SketchFormatError(f"not an hll sketch: {error}") from None
        sizes = (
            sketch.get_compact_serialization_bytes(),
            sketch.get_updatable_serialization_bytes(),
        )
        if len(data) not in sizes:
            raise SketchFormatError(f"an hll image of this content is not {len(data)} bytes long")
        lg_k = int(spec.params["lg_k"])
        if sketch.lg_config_k != lg_k:
            raise SketchFormatError(f"the bytes hold lg_k={sketch.lg_config_k}, the spec {lg_k}")
        if sketch.tgt_type != _TARGET:
            # Another writer's HLL_6 or HLL_8 holds the same registers; keep ours at 4 bits.
            union = hll_union(lg_k)
            union.update(sketch)
            sketch = union.get_result(_TARGET)
        return cls(spec, sketch)

    @classmethod
    def of_packed_texts(
        cls, spec: SketchSpec, packed: bytes, *, into_dense: bool = False
    ) -> HyperLogLogSketch:
        """A sketch of UTF-8 texts separated by NUL bytes: the registers update_many sets.

        A large batch of short texts, or any batch of short texts that will be merged
        into a dense sketch (`into_dense`), is hashed with numpy (see
        _hyperloglog_packed) into a sketch whose estimate comes from its registers
        alone, as a union's does; any other batch is added item by item. Bytes that are
        not UTF-8 raise SketchItemError.
        """
        try:
            text = packed.decode("utf-8")
        except UnicodeDecodeError as error:
            raise SketchItemError(cls.kind.value, None, f"not UTF-8 text: {error}") from None
        lg_k = int(spec.params["lg_k"])
        registers = packed_registers(packed, lg_k, into_dense=into_dense)
        if registers is None:
            sketch = cls(spec)
            sketch.update_texts(text.split("\x00"))
            return sketch
        return cls.deserialize(spec, hll_8_image(registers, lg_k))

    def update_many(self, items: Items) -> None:
        self.update_texts(item_texts(items, self.kind.value))

    def update_texts(self, texts: Sequence[str]) -> None:
        """Add canonical item texts already known to be valid (strings decoded from UTF-8).

        This skips the check update_many makes, for batches that cannot fail it.
        """
        # DataSketches' Python binding has no batch update for hll. Mapping the bound
        # method over the batch and draining it in C (a zero-length deque) skips the
        # loop's bytecode.
        deque(map(self._sketch.update, texts), maxlen=0)

    def merge(self, other: Sketch) -> None:
        """Union in another sketch; the result answers from its registers alone."""
        source = self._mergeable(other)
        union = hll_union(self._lg_k)
        union.update(self._sketch)
        union.update(source._sketch)
        if not self._is_dense():
            # A union that starts sparse (a coupon list, or empty) and meets a dense
            # sketch copies it, HIP accumulator and all, and counts the coupons into that
            # order-dependent estimator. Meeting the dense sketch again once dense
            # changes no register and makes the result a true union.
            union.update(source._sketch)
        self._sketch = union.get_result(_TARGET)

    def is_dense_union(self) -> bool:
        """Whether the sketch holds its register array (not a coupon list or set) and
        answers from the registers alone (marked out of order, as a union of dense
        sketches is): merging registers into it then gives the same bytes as merging the
        items' own sketch."""
        image: bytes = self._sketch.serialize_compact()
        return (image[_MODE_BYTE] & 3) == _DENSE_MODE and bool(
            image[_FLAGS_BYTE] & _OUT_OF_ORDER_FLAG
        )

    def _is_dense(self) -> bool:
        # The image's mode byte (offset 7) holds the current mode in its low two bits:
        # 0 a coupon list, 1 a coupon set, 2 the register array.
        image: bytes = self._sketch.serialize_compact()
        return (image[_MODE_BYTE] & 3) == _DENSE_MODE

    def serialize(self) -> bytes:
        return bytes(self._sketch.serialize_compact())

    def memory_bytes(self) -> int:
        return int(self._sketch.get_updatable_serialization_bytes())

    def items_seen(self) -> int | None:
        return None

    def is_empty(self) -> bool:
        return bool(self._sketch.is_empty())

    def empty_like(self) -> HyperLogLogSketch:
        return HyperLogLogSketch(self.spec)

    def distinct_count(self) -> DistinctCount:
        sketch = self._sketch
        intervals = tuple(
            Interval(
                deviations,
                float(sketch.get_lower_bound(deviations)),
                float(sketch.get_upper_bound(deviations)),
            )
            for deviations in (1, 2, 3)
        )
        # The merged (unioned) error is the larger; a sketch may have been merged.
        relative_error = abs(float(hll_sketch.get_rel_err(False, True, self._lg_k, 1)))
        return DistinctCount(float(sketch.get_estimate()), intervals, relative_error)

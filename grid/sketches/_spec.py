"""The spec of a sketch: its kind and parameters, validated and normalized, stored as JSON."""

from __future__ import annotations

import enum
import json
import math
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from datasketches import count_min_sketch

from grid.sketches._errors import SketchParameterError

Params = Mapping[str, int | float]


class SketchKind(enum.StrEnum):
    """The sketch kinds; each value is the name a map's spec and the wire use."""

    HYPERLOGLOG = "hll"
    COUNT_MIN = "cms"
    BLOOM = "bloom"
    RESERVOIR = "reservoir"
    KLL = "kll"
    TOP_K = "topk"


HYPERLOGLOG_LG_K_MIN = 4
HYPERLOGLOG_LG_K_MAX = 21
HYPERLOGLOG_LG_K_DEFAULT = 12
# DataSketches refuses fewer than 3 buckets: the relative error would pass 1.
COUNT_MIN_WIDTH_MIN = 3
COUNT_MIN_WIDTH_MAX = 1 << 24
COUNT_MIN_DEPTH_MIN = 1
COUNT_MIN_DEPTH_MAX = 32
# A grid value past these sizes would stall replication and snapshots.
COUNT_MIN_BYTES_MAX = 64 << 20
BLOOM_BYTES_MAX = 64 << 20
BLOOM_CAPACITY_ITEMS_MAX = 1 << 40
BLOOM_ERROR_RATE_DEFAULT = 0.01
RESERVOIR_K_MIN = 1
RESERVOIR_K_MAX = 100_000
KLL_K_MIN = 8
KLL_K_MAX = 65_535
KLL_K_DEFAULT = 200
TOP_K_LG_MAX_K_MIN = 3
TOP_K_LG_MAX_K_MAX = 24
TOP_K_LG_MAX_K_DEFAULT = 10
TOP_K_K_DEFAULT = 10

_KIND_NAMES = frozenset(member.value for member in SketchKind)

_PARAMETERS: dict[SketchKind, tuple[str, ...]] = {
    SketchKind.HYPERLOGLOG: ("lg_k",),
    SketchKind.COUNT_MIN: ("width", "depth", "epsilon", "delta"),
    SketchKind.BLOOM: ("capacity_items", "error_rate"),
    SketchKind.RESERVOIR: ("k",),
    SketchKind.KLL: ("k",),
    SketchKind.TOP_K: ("lg_max_k", "k"),
}


def bloom_shape(capacity_items: int, error_rate: float) -> tuple[int, int]:
    """Return (bits, hashes) of the Bloom filter that holds capacity_items at error_rate.

    These are the sizes that minimize the bits for the rate: m = -n ln p / (ln 2)^2 and
    k = (m / n) ln 2, with at least one hash.
    """
    bits = max(8, math.ceil(-capacity_items * math.log(error_rate) / math.log(2) ** 2))
    hashes = max(1, round(bits / capacity_items * math.log(2)))
    return bits, hashes


def top_k_capacity(lg_max_k: int) -> int:
    """Return how many items a frequent-items map of 2^lg_max_k slots can hold (3/4 of it)."""
    return (3 << lg_max_k) // 4


@dataclass(frozen=True)
class SketchSpec:
    """The kind of a sketch and its parameters, fixed when a map is created.

    The parameters are validated and normalized on construction: defaults filled in,
    and a Count-Min given as (epsilon, delta) turned into the (width, depth) it needs,
    so two specs that make the same sketch compare equal.
    """

    kind: SketchKind
    params: Params = field(default_factory=dict)

    def __post_init__(self) -> None:
        kind = _parse_kind(self.kind)
        params = _normalize(kind, self.params)
        object.__setattr__(self, "kind", kind)
        # A read-only view, so a frozen spec cannot be changed through its params.
        object.__setattr__(self, "params", types.MappingProxyType(params))

    def __hash__(self) -> int:
        return hash((self.kind, tuple(sorted(self.params.items()))))

    def __repr__(self) -> str:
        return f"SketchSpec({self.kind.value!r}, {dict(self.params)!r})"

    @classmethod
    def of(cls, kind: SketchKind | str, **params: int | float) -> SketchSpec:
        """Build a spec from a kind name and keyword parameters: SketchSpec.of("hll", lg_k=12)."""
        return cls(_parse_kind(kind), params)

    def to_dict(self) -> dict[str, object]:
        """Return the spec as a JSON-ready mapping: {"kind": ..., "params": {...}}."""
        return {"kind": self.kind.value, "params": dict(self.params)}

    @classmethod
    def from_dict(cls, document: object) -> SketchSpec:
        """Read a mapping written by to_dict, validating it again."""
        if not isinstance(document, Mapping) or set(document) - {"kind", "params"}:
            raise SketchParameterError("spec", 'must be an object with "kind" and "params"')
        if "kind" not in document:
            raise SketchParameterError("kind", "required")
        params = document.get("params", {})
        if not isinstance(params, Mapping):
            raise SketchParameterError("params", "must be an object")
        return cls(_parse_kind(document["kind"]), params)

    def to_json(self) -> str:
        """Return the spec as compact JSON text with sorted keys."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> SketchSpec:
        """Read a spec written by to_json, validating it again."""
        try:
            document = json.loads(text)
        except (ValueError, UnicodeDecodeError) as error:
            raise SketchParameterError("spec", f"not JSON: {error}") from None
        return cls.from_dict(document)


def _parse_kind(kind: object) -> SketchKind:
    if isinstance(kind, str) and kind in _KIND_NAMES:
        return SketchKind(kind)
    allowed = ", ".join(member.value for member in SketchKind)
    raise SketchParameterError("kind", f"unknown kind {kind!r}; one of {allowed}")


def _normalize(kind: SketchKind, params: object) -> dict[str, int | float]:
    if not isinstance(params, Mapping):
        raise SketchParameterError("params", f"must be a mapping, not {type(params).__name__}")
    allowed = _PARAMETERS[kind]
    unknown = sorted(str(name) for name in params if name not in allowed)
    if unknown:
        raise SketchParameterError(
            ", ".join(unknown),
            f"unknown parameter for {kind.value}; it takes {', '.join(allowed)}",
        )
    return _NORMALIZERS[kind](params)


def _integer(
    params: Params, name: str, low: int, high: int, default: int | None, why: str = ""
) -> int:
    if name not in params:
        if default is None:
            raise SketchParameterError(name, f"required, an integer from {low} to {high}")
        return default
    value = params[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise SketchParameterError(name, f"must be an integer, not {type(value).__name__}")
    if not low <= value <= high:
        raise SketchParameterError(name, f"must be from {low} to {high}{why}, not {value}")
    return int(value)


def _open_fraction(params: Params, name: str, default: float | None) -> float:
    if name not in params:
        if default is None:
            raise SketchParameterError(name, "required, a number between 0 and 1 (exclusive)")
        return default
    value = params[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SketchParameterError(name, f"must be a number, not {type(value).__name__}")
    if not 0.0 < value < 1.0:
        raise SketchParameterError(name, f"must be between 0 and 1 (exclusive), not {value}")
    return float(value)


def _hyperloglog(params: Params) -> dict[str, int | float]:
    lg_k = _integer(
        params, "lg_k", HYPERLOGLOG_LG_K_MIN, HYPERLOGLOG_LG_K_MAX, HYPERLOGLOG_LG_K_DEFAULT
    )
    return {"lg_k": lg_k}


def _count_min(params: Params) -> dict[str, int | float]:
    by_shape = "width" in params or "depth" in params
    by_error = "epsilon" in params or "delta" in params
    if by_shape and by_error:
        raise SketchParameterError(
            "epsilon, delta", "give either width and depth, or epsilon and delta, not both"
        )
    if by_error:
        epsilon = _open_fraction(params, "epsilon", None)
        delta = _open_fraction(params, "delta", None)
        # DataSketches' own sizing, so our sketch matches any other DataSketches user's.
        width = int(count_min_sketch.suggest_num_buckets(epsilon))
        depth = int(count_min_sketch.suggest_num_hashes(1.0 - delta))
        if not COUNT_MIN_WIDTH_MIN <= width <= COUNT_MIN_WIDTH_MAX:
            raise SketchParameterError(
                "epsilon",
                f"{epsilon} needs {width} buckets a row; the allowed range is "
                f"{COUNT_MIN_WIDTH_MIN} to {COUNT_MIN_WIDTH_MAX}",
            )
        if not COUNT_MIN_DEPTH_MIN <= depth <= COUNT_MIN_DEPTH_MAX:
            raise SketchParameterError(
                "delta",
                f"{delta} needs {depth} rows; the allowed range is "
                f"{COUNT_MIN_DEPTH_MIN} to {COUNT_MIN_DEPTH_MAX}",
            )
    elif by_shape:
        width = _integer(params, "width", COUNT_MIN_WIDTH_MIN, COUNT_MIN_WIDTH_MAX, None)
        depth = _integer(params, "depth", COUNT_MIN_DEPTH_MIN, COUNT_MIN_DEPTH_MAX, None)
    else:
        raise SketchParameterError(
            "width, depth", "required: give width and depth, or epsilon and delta"
        )
    counters_bytes = width * depth * 8
    if counters_bytes > COUNT_MIN_BYTES_MAX:
        raise SketchParameterError(
            "width",
            f"{width} x {depth} counters take {counters_bytes} bytes, "
            f"above the limit of {COUNT_MIN_BYTES_MAX}",
        )
    return {"depth": depth, "width": width}


def _bloom(params: Params) -> dict[str, int | float]:
    capacity_items = _integer(params, "capacity_items", 1, BLOOM_CAPACITY_ITEMS_MAX, None)
    error_rate = _open_fraction(params, "error_rate", BLOOM_ERROR_RATE_DEFAULT)
    bits, _ = bloom_shape(capacity_items, error_rate)
    if (bits + 7) // 8 > BLOOM_BYTES_MAX:
        raise SketchParameterError(
            "capacity_items",
            f"{capacity_items} items at error_rate {error_rate} need {(bits + 7) // 8} bytes, "
            f"above the limit of {BLOOM_BYTES_MAX}",
        )
    return {"capacity_items": capacity_items, "error_rate": error_rate}


def _reservoir(params: Params) -> dict[str, int | float]:
    return {"k": _integer(params, "k", RESERVOIR_K_MIN, RESERVOIR_K_MAX, None)}


def _kll(params: Params) -> dict[str, int | float]:
    return {"k": _integer(params, "k", KLL_K_MIN, KLL_K_MAX, KLL_K_DEFAULT)}


def _top_k(params: Params) -> dict[str, int | float]:
    lg_max_k = _integer(
        params, "lg_max_k", TOP_K_LG_MAX_K_MIN, TOP_K_LG_MAX_K_MAX, TOP_K_LG_MAX_K_DEFAULT
    )
    capacity = top_k_capacity(lg_max_k)
    # The default shrinks with a small map, so lg_max_k alone is always a valid spec.
    why = f" (what a map of 2^{lg_max_k} slots holds)"
    k = _integer(params, "k", 1, capacity, min(TOP_K_K_DEFAULT, capacity), why)
    return {"k": k, "lg_max_k": lg_max_k}


_NORMALIZERS: dict[SketchKind, Callable[[Params], dict[str, int | float]]] = {
    SketchKind.HYPERLOGLOG: _hyperloglog,
    SketchKind.COUNT_MIN: _count_min,
    SketchKind.BLOOM: _bloom,
    SketchKind.RESERVOIR: _reservoir,
    SketchKind.KLL: _kll,
    SketchKind.TOP_K: _top_k,
}

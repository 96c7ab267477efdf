"""Sketch maps from the SDK: ``client.sketches`` (and ``async_client.sketches``).

    client.sketches.create("visitors", kind="hll", lg_k=12)
    client.sketches.add("visitors", "2026-11-26", ["u1", "u2", "u3"])
    client.sketches.estimate("visitors", "2026-11-26").value

Queries take one key, or a list of keys whose sketches the server merges (a union)
before answering. A batch of strings travels NUL-separated and a batch of numbers for
kll as packed doubles, so adding costs one call and no per-item JSON; other batches
travel as JSON. ``add`` sends at most ``chunk_items`` items a call: each call is one
atomic, commutative write, so a larger list becomes several of them.
"""

from __future__ import annotations

import array
import builtins
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from shoal import _codec, _requests
from shoal import _sketch_replies as replies
from shoal import _sketch_results as results
from shoal._errors import InvalidArgumentError
from shoal.v1 import admin_pb2, sketches_pb2

if TYPE_CHECKING:
    from shoal._async_client import AsyncClient
    from shoal._client import Client

CHUNK_ITEMS_DEFAULT = 50_000
Keys = str | Sequence[str]


def item_batch(items: Any, kind: str | None) -> sketches_pb2.ItemBatch:
    """The cheapest wire form of a batch: NUL-separated strings, doubles for kll, else JSON."""
    if isinstance(items, str | bytes | bytearray):
        raise InvalidArgumentError(
            "items must be a list of items; wrap a single item in a list", field="items"
        )
    dtype = getattr(items, "dtype", None)
    if dtype is not None and hasattr(items, "astype"):
        # A numpy array (the SDK does not import numpy; the caller has it).
        if kind == "kll" and dtype.kind in "fiub":
            return _requests.build(sketches_pb2.ItemBatch, float64_le=items.astype("<f8").tobytes())
        items = items.tolist()
    batch = items if type(items) is list else list(items)
    try:
        joined: str | None = "\x00".join(batch)
    except TypeError:
        joined = None
    if joined is not None and batch and joined.count("\x00") == len(batch) - 1:
        try:
            return _requests.build(sketches_pb2.ItemBatch, nul_separated=joined.encode("utf-8"))
        except UnicodeEncodeError:
            raise InvalidArgumentError(
                "items: a string holds a lone surrogate, which is not UTF-8", field="items"
            ) from None
    if kind == "kll" and not any(isinstance(item, str | bytes) for item in batch):
        try:
            numbers = array.array("d", batch)
        except (TypeError, OverflowError):
            pass
        else:
            if sys.byteorder == "big":
                numbers.byteswap()
            return _requests.build(sketches_pb2.ItemBatch, float64_le=numbers.tobytes())
    return _requests.build(sketches_pb2.ItemBatch, json=_codec.encode(batch, what="items"))


def _is_numeric_batch(items: Any) -> bool:
    dtype = getattr(items, "dtype", None)
    if dtype is not None:
        return bool(dtype.kind in "fiub")
    return bool(items) and not isinstance(items[0], str)


def target(map_name: str, keys: Keys) -> sketches_pb2.SketchTarget:
    names = [keys] if isinstance(keys, str) else list(keys)
    if not names:
        raise InvalidArgumentError("keys: name at least one key", field="keys")
    return _requests.build(
        sketches_pb2.SketchTarget, map=map_name, keys=[_requests.check_key(name) for name in names]
    )


def chunks(items: Any, size: int) -> list[Any]:
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise InvalidArgumentError(
            f"chunk_items must be an integer of at least 1, got {type(size).__name__}",
            field="chunk_items",
        )
    if getattr(items, "dtype", None) is None and not isinstance(items, list):
        if isinstance(items, str | bytes | bytearray) or not isinstance(items, Iterable):
            raise InvalidArgumentError(
                "items must be a list of items; wrap a single item in a list", field="items"
            )
        items = list(items)
    if len(items) <= size:
        return [items]
    return [items[start : start + size] for start in range(0, len(items), size)]


def create_request(
    map_name: str, kind: str, if_not_exists: bool, params: dict[str, Any]
) -> sketches_pb2.CreateSketchMapRequest:
    return _requests.build(
        sketches_pb2.CreateSketchMapRequest,
        name=map_name,
        kind=kind,
        params_json=_codec.encode(params, what="params"),
        if_not_exists=if_not_exists,
    )


def _sketch_kind(info: Any) -> str | None:
    if not info.sketch_json:
        return None
    import json

    kind = json.loads(info.sketch_json).get("kind")
    return kind if isinstance(kind, str) else None


class Sketches:
    """Sketch maps of a `Client`: create, add batches, and answers with error bounds."""

    def __init__(self, client: Client) -> None:
        self._client = client
        # Each map's kind, to pick a batch's wire form; asked once per map.
        self._kinds: dict[str, str | None] = {}

    def _call(self, method: str, request: Any, *, idempotent: bool = True) -> Any:
        return self._client._call(
            lambda stubs: getattr(stubs.sketches, method), request, idempotent=idempotent
        )

    def _kind(self, map_name: str) -> str | None:
        if map_name not in self._kinds:
            info = self._client._call(
                lambda stubs: stubs.admin.DescribeMap,
                _requests.build(admin_pb2.DescribeMapRequest, name=map_name),
                idempotent=True,
            )
            self._kinds[map_name] = _sketch_kind(info)
        return self._kinds[map_name]

    def create(
        self, map_name: str, kind: str, *, if_not_exists: bool = False, **params: Any
    ) -> results.SketchMapInfo:
        """Create a sketch map: kind is hll, cms, bloom, reservoir, kll or topk; params are
        the kind's (see the README). Bad ones raise InvalidArgumentError with the reason."""
        reply = self._call(
            "Create", create_request(map_name, kind, if_not_exists, params), idempotent=False
        )
        info = replies.map_info(reply)
        self._kinds[map_name] = info.kind
        return info

    def list(self) -> builtins.list[results.SketchMapInfo]:
        reply = self._call(
            "List",
            _requests.build(sketches_pb2.ListSketchMapsRequest),
        )
        return [replies.map_info(item) for item in reply.maps]

    def add(
        self, map_name: str, key: str, items: Any, *, chunk_items: int = CHUNK_ITEMS_DEFAULT
    ) -> int:
        """Add a batch of items to the sketch at a key; returns the key's new version.

        One call (one atomic write) for each ``chunk_items`` items. Concurrent adds to a
        key never conflict; a retried call applies once.
        """
        version = 0
        for chunk in chunks(items, chunk_items):
            if not len(chunk):
                continue
            kind = self._kind(map_name) if _is_numeric_batch(chunk) else None
            request = _requests.build(
                sketches_pb2.AddRequest,
                map=map_name,
                key=_requests.check_key(key),
                items=item_batch(chunk, kind),
                request_id=_requests.new_id(),
            )
            version = int(self._call("Add", request).version)
        return version

    def estimate(self, map_name: str, key: str) -> results.Estimate:
        """The kind's main answer for one key, with error bounds (an absent key is empty)."""
        request = _requests.build(
            sketches_pb2.EstimateRequest, map=map_name, key=_requests.check_key(key)
        )
        return replies.estimate(self._call("Estimate", request))

    def merge_estimate(self, map_name: str, keys: Sequence[str]) -> results.Estimate:
        """The same answer for the union of several keys' sketches, merged on the server."""
        checked = target(map_name, keys)
        request = _requests.build(
            sketches_pb2.MergeEstimateRequest, map=map_name, keys=checked.keys
        )
        return replies.estimate(self._call("MergeEstimate", request))

    def frequency(self, map_name: str, keys: Keys, item: Any) -> results.Frequency:
        """cms, topk: how often one item occurred."""
        return self.frequencies(map_name, keys, [item])[0]

    def frequencies(
        self, map_name: str, keys: Keys, items: Any
    ) -> builtins.list[results.Frequency]:
        request = _requests.build(
            sketches_pb2.FrequencyRequest,
            target=target(map_name, keys),
            items=item_batch(items, None),
        )
        return replies.frequencies(self._call("Frequency", request))

    def contains(self, map_name: str, keys: Keys, item: Any) -> bool:
        """bloom: False if the item was never added; True if it probably was."""
        return self.contains_many(map_name, keys, [item])[0]

    def contains_many(self, map_name: str, keys: Keys, items: Any) -> builtins.list[bool]:
        request = _requests.build(
            sketches_pb2.ContainsRequest,
            target=target(map_name, keys),
            items=item_batch(items, None),
        )
        return list(self._call("Contains", request).present)

    def quantiles(
        self, map_name: str, keys: Keys, ranks: Sequence[float] | None = None
    ) -> results.QuantileSummary:
        """kll: the values at normalized ranks (default: the summary ranks)."""
        request = _requests.build(
            sketches_pb2.QuantilesRequest, target=target(map_name, keys), ranks=ranks or ()
        )
        reply = self._call("Quantiles", request)
        return replies.quantiles(reply.answer, len(request.target.keys), 0)

    def quantile(self, map_name: str, keys: Keys, rank: float) -> results.Quantile:
        return self.quantiles(map_name, keys, [rank]).quantiles[0]

    def ranks(
        self, map_name: str, keys: Keys, values: Sequence[float]
    ) -> builtins.list[results.Rank]:
        """kll: the fraction of items at or below each value."""
        request = _requests.build(
            sketches_pb2.RanksRequest, target=target(map_name, keys), values=values
        )
        return replies.ranks(self._call("Ranks", request))

    def rank(self, map_name: str, keys: Keys, value: float) -> results.Rank:
        return self.ranks(map_name, keys, [value])[0]

    def top(self, map_name: str, keys: Keys, k: int | None = None) -> results.TopItems:
        """topk: the k heaviest items (the map's k by default)."""
        request = _requests.build(sketches_pb2.TopRequest, target=target(map_name, keys), k=k or 0)
        return replies.top(self._call("Top", request).answer, 1, 0)

    def sample(self, map_name: str, keys: Keys) -> results.ReservoirSample:
        """reservoir: the uniform sample (of the union, for several keys)."""
        request = _requests.build(sketches_pb2.SampleRequest, target=target(map_name, keys))
        return replies.sample(self._call("Sample", request).answer, 1, 0)

    def export(self, map_name: str, key: str) -> bytes | None:
        """The portable bytes of a key's sketch (DataSketches' format where it has one)."""
        request = _requests.build(
            sketches_pb2.ExportRequest, map=map_name, key=_requests.check_key(key)
        )
        reply = self._call("Export", request)
        return bytes(reply.data) if reply.found else None

    def accuracy(self) -> results.AccuracyReport:
        """Observed error of each kind on the monitored keys, measured now."""
        return replies.accuracy(
            self._call(
                "Accuracy",
                _requests.build(sketches_pb2.AccuracyRequest),
            )
        )


class AsyncSketches:
    """The asyncio form of `Sketches`, for `AsyncClient`; the same calls, awaited."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client
        self._kinds: dict[str, str | None] = {}

    async def _call(self, method: str, request: Any, *, idempotent: bool = True) -> Any:
        return await self._client._call(
            lambda stubs: getattr(stubs.sketches, method), request, idempotent=idempotent
        )

    async def _kind(self, map_name: str) -> str | None:
        if map_name not in self._kinds:
            info = await self._client._call(
                lambda stubs: stubs.admin.DescribeMap,
                _requests.build(admin_pb2.DescribeMapRequest, name=map_name),
                idempotent=True,
            )
            self._kinds[map_name] = _sketch_kind(info)
        return self._kinds[map_name]

    async def create(
        self, map_name: str, kind: str, *, if_not_exists: bool = False, **params: Any
    ) -> results.SketchMapInfo:
        reply = await self._call(
            "Create", create_request(map_name, kind, if_not_exists, params), idempotent=False
        )
        info = replies.map_info(reply)
        self._kinds[map_name] = info.kind
        return info

    async def list(self) -> builtins.list[results.SketchMapInfo]:
        reply = await self._call(
            "List",
            _requests.build(sketches_pb2.ListSketchMapsRequest),
        )
        return [replies.map_info(item) for item in reply.maps]

    async def add(
        self, map_name: str, key: str, items: Any, *, chunk_items: int = CHUNK_ITEMS_DEFAULT
    ) -> int:
        version = 0
        for chunk in chunks(items, chunk_items):
            if not len(chunk):
                continue
            kind = await self._kind(map_name) if _is_numeric_batch(chunk) else None
            request = _requests.build(
                sketches_pb2.AddRequest,
                map=map_name,
                key=_requests.check_key(key),
                items=item_batch(chunk, kind),
                request_id=_requests.new_id(),
            )
            version = int((await self._call("Add", request)).version)
        return version

    async def estimate(self, map_name: str, key: str) -> results.Estimate:
        request = _requests.build(
            sketches_pb2.EstimateRequest, map=map_name, key=_requests.check_key(key)
        )
        return replies.estimate(await self._call("Estimate", request))

    async def merge_estimate(self, map_name: str, keys: Sequence[str]) -> results.Estimate:
        checked = target(map_name, keys)
        request = _requests.build(
            sketches_pb2.MergeEstimateRequest, map=map_name, keys=checked.keys
        )
        return replies.estimate(await self._call("MergeEstimate", request))

    async def frequency(self, map_name: str, keys: Keys, item: Any) -> results.Frequency:
        return (await self.frequencies(map_name, keys, [item]))[0]

    async def frequencies(
        self, map_name: str, keys: Keys, items: Any
    ) -> builtins.list[results.Frequency]:
        request = _requests.build(
            sketches_pb2.FrequencyRequest,
            target=target(map_name, keys),
            items=item_batch(items, None),
        )
        return replies.frequencies(await self._call("Frequency", request))

    async def contains(self, map_name: str, keys: Keys, item: Any) -> bool:
        return (await self.contains_many(map_name, keys, [item]))[0]

    async def contains_many(self, map_name: str, keys: Keys, items: Any) -> builtins.list[bool]:
        request = _requests.build(
            sketches_pb2.ContainsRequest,
            target=target(map_name, keys),
            items=item_batch(items, None),
        )
        return list((await self._call("Contains", request)).present)

    async def quantiles(
        self, map_name: str, keys: Keys, ranks: Sequence[float] | None = None
    ) -> results.QuantileSummary:
        request = _requests.build(
            sketches_pb2.QuantilesRequest, target=target(map_name, keys), ranks=ranks or ()
        )
        reply = await self._call("Quantiles", request)
        return replies.quantiles(reply.answer, len(request.target.keys), 0)

    async def quantile(self, map_name: str, keys: Keys, rank: float) -> results.Quantile:
        return (await self.quantiles(map_name, keys, [rank])).quantiles[0]

    async def ranks(
        self, map_name: str, keys: Keys, values: Sequence[float]
    ) -> builtins.list[results.Rank]:
        request = _requests.build(
            sketches_pb2.RanksRequest, target=target(map_name, keys), values=values
        )
        return replies.ranks(await self._call("Ranks", request))

    async def rank(self, map_name: str, keys: Keys, value: float) -> results.Rank:
        return (await self.ranks(map_name, keys, [value]))[0]

    async def top(self, map_name: str, keys: Keys, k: int | None = None) -> results.TopItems:
        request = _requests.build(sketches_pb2.TopRequest, target=target(map_name, keys), k=k or 0)
        return replies.top((await self._call("Top", request)).answer, 1, 0)

    async def sample(self, map_name: str, keys: Keys) -> results.ReservoirSample:
        request = _requests.build(sketches_pb2.SampleRequest, target=target(map_name, keys))
        return replies.sample((await self._call("Sample", request)).answer, 1, 0)

    async def export(self, map_name: str, key: str) -> bytes | None:
        request = _requests.build(
            sketches_pb2.ExportRequest, map=map_name, key=_requests.check_key(key)
        )
        reply = await self._call("Export", request)
        return bytes(reply.data) if reply.found else None

    async def accuracy(self) -> results.AccuracyReport:
        return replies.accuracy(
            await self._call(
                "Accuracy",
                _requests.build(sketches_pb2.AccuracyRequest),
            )
        )

"""The Sketches service: sketch maps, batch adds, and answers with their error bounds."""

from __future__ import annotations

import grpc
import orjson

from coordinator.security.setup import Security
from coordinator.services.errors import unary
from coordinator.services.sketch_messages import (
    SUMMARY_RANKS,
    answering,
    batch_bytes,
    bloom_fill,
    estimate,
    map_info,
    quantiles,
    sample,
    top,
)
from coordinator.sketches import SketchMaps
from coordinator.sketches.items import decode_items
from coordinator.sketches.maps import Loaded
from grid import values
from grid.errors import InvalidArgument
from shoal.v1 import sketches_pb2, sketches_pb2_grpc


class SketchesService(sketches_pb2_grpc.SketchesServicer):
    def __init__(self, sketches: SketchMaps, security: Security | None = None) -> None:
        self.security = security
        self.sketches = sketches

    def _load(self, target: sketches_pb2.SketchTarget) -> Loaded:
        return self.sketches.load(target.map, list(target.keys))

    @unary
    def Create(
        self, request: sketches_pb2.CreateSketchMapRequest, context: grpc.ServicerContext
    ) -> sketches_pb2.SketchMapInfo:
        params: object = {}
        if request.params_json:
            try:
                params = orjson.loads(request.params_json)
            except orjson.JSONDecodeError as error:
                raise InvalidArgument(
                    f"params_json is not JSON: {error}", field="params_json"
                ) from None
        if not isinstance(params, dict):
            raise InvalidArgument("params_json must be a JSON object", field="params_json")
        # An integer past 64 bits would arrive as a float ("k: must be an integer, not float").
        values.check_document(request.params_json, params, what="params_json")
        view = self.sketches.create(
            request.name, request.kind, params, if_not_exists=request.if_not_exists
        )
        return map_info(view)

    @unary
    def List(
        self, request: sketches_pb2.ListSketchMapsRequest, context: grpc.ServicerContext
    ) -> sketches_pb2.ListSketchMapsResponse:
        shown = (
            None
            if self.security is None
            else self.security.visible(getattr(context, "identity", None))
        )
        return sketches_pb2.ListSketchMapsResponse(
            maps=[
                map_info(view) for view in self.sketches.list() if shown is None or shown(view.name)
            ]
        )

    @unary
    def Add(
        self, request: sketches_pb2.AddRequest, context: grpc.ServicerContext
    ) -> sketches_pb2.AddResponse:
        version = self.sketches.add(
            request.map, request.key, batch_bytes(request.items), request_id=request.request_id
        )
        return sketches_pb2.AddResponse(version=version)

    @unary
    def Estimate(
        self, request: sketches_pb2.EstimateRequest, context: grpc.ServicerContext
    ) -> sketches_pb2.EstimateResponse:
        with answering():
            return estimate(self.sketches.load(request.map, [request.key]))

    @unary
    def MergeEstimate(
        self, request: sketches_pb2.MergeEstimateRequest, context: grpc.ServicerContext
    ) -> sketches_pb2.EstimateResponse:
        with answering():
            return estimate(self.sketches.load(request.map, list(request.keys)))

    @unary
    def Frequency(
        self, request: sketches_pb2.FrequencyRequest, context: grpc.ServicerContext
    ) -> sketches_pb2.FrequencyResponse:
        loaded = self._load(request.target)
        items = decode_items(batch_bytes(request.items), loaded.spec.kind)
        with answering():
            answers = [loaded.sketch.frequency(item) for item in items]
        return sketches_pb2.FrequencyResponse(
            frequencies=[
                sketches_pb2.Frequency(
                    item=answer.item,
                    estimate=answer.estimate,
                    lower_bound=answer.lower_bound,
                    upper_bound=answer.upper_bound,
                    error_bound=answer.error_bound,
                    total_weight=answer.total_weight,
                    confidence=answer.confidence,
                )
                for answer in answers
            ]
        )

    @unary
    def Contains(
        self, request: sketches_pb2.ContainsRequest, context: grpc.ServicerContext
    ) -> sketches_pb2.ContainsResponse:
        loaded = self._load(request.target)
        items = decode_items(batch_bytes(request.items), loaded.spec.kind)
        with answering():
            present = loaded.sketch.might_contain_many(items)
            fill = loaded.sketch.fill()
        return sketches_pb2.ContainsResponse(present=present, fill=bloom_fill(fill))

    @unary
    def Quantiles(
        self, request: sketches_pb2.QuantilesRequest, context: grpc.ServicerContext
    ) -> sketches_pb2.QuantilesResponse:
        loaded = self._load(request.target)
        ranks = list(request.ranks) or list(SUMMARY_RANKS)
        with answering():
            answers = loaded.sketch.quantiles(ranks)
        error = answers[0].normalized_rank_error
        return sketches_pb2.QuantilesResponse(
            answer=quantiles(answers, error, loaded.sketch.items_seen() or 0)
        )

    @unary
    def Ranks(
        self, request: sketches_pb2.RanksRequest, context: grpc.ServicerContext
    ) -> sketches_pb2.RanksResponse:
        loaded = self._load(request.target)
        if not request.values:
            raise InvalidArgument("values: give at least one value to rank", field="values")
        with answering():
            answers = [loaded.sketch.rank(value) for value in request.values]
        return sketches_pb2.RanksResponse(
            ranks=[
                sketches_pb2.Rank(
                    value=answer.value,
                    rank=answer.rank,
                    lower_rank=answer.lower_rank,
                    upper_rank=answer.upper_rank,
                )
                for answer in answers
            ],
            normalized_rank_error=answers[0].normalized_rank_error,
            items_seen=answers[0].items_seen,
        )

    @unary
    def Top(
        self, request: sketches_pb2.TopRequest, context: grpc.ServicerContext
    ) -> sketches_pb2.TopResponse:
        loaded = self._load(request.target)
        with answering():
            answer = loaded.sketch.top(request.k or None)
        return sketches_pb2.TopResponse(answer=top(answer))

    @unary
    def Sample(
        self, request: sketches_pb2.SampleRequest, context: grpc.ServicerContext
    ) -> sketches_pb2.SampleResponse:
        loaded = self._load(request.target)
        with answering():
            return sketches_pb2.SampleResponse(answer=sample(loaded))

    @unary
    def Export(
        self, request: sketches_pb2.ExportRequest, context: grpc.ServicerContext
    ) -> sketches_pb2.ExportResponse:
        exported = self.sketches.export(request.map, request.key)
        if exported is None:
            return sketches_pb2.ExportResponse(found=False)
        return sketches_pb2.ExportResponse(
            found=True,
            kind=exported.spec.kind.value,
            params_json=orjson.dumps(dict(exported.spec.params), option=orjson.OPT_SORT_KEYS),
            data=exported.data,
            format=exported.format,
            version=exported.version,
        )

    @unary
    def Accuracy(
        self, request: sketches_pb2.AccuracyRequest, context: grpc.ServicerContext
    ) -> sketches_pb2.AccuracyResponse:
        report = self.sketches.measure_accuracy()
        return sketches_pb2.AccuracyResponse(
            kinds=[
                sketches_pb2.KindAccuracy(
                    kind=item.stats.kind.value,
                    samples=item.stats.samples,
                    mean_relative_error=item.stats.mean_relative_error,
                    max_relative_error=item.stats.max_relative_error,
                    error_bound=item.stats.error_bound,
                    outside_bound=item.stats.outside_bound,
                    keys=item.keys,
                )
                for item in report.kinds
            ],
            sample_rate=report.sample_rate,
            tracked_keys=report.tracked_keys,
            overflowed_keys=report.overflowed_keys,
            refused_keys=report.refused_keys,
            untrusted_keys=report.untrusted_keys,
        )

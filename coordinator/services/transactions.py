"""The Transactions service: one-call commits and transaction introspection."""

from __future__ import annotations

import grpc

from coordinator.node import Node
from coordinator.services.data import condition_from
from coordinator.services.errors import unary
from coordinator.telemetry import log_fields
from grid.errors import InvalidArgument
from grid.memory.records import Op
from grid.participant import Read, Write
from shoal.v1 import transactions_pb2, transactions_pb2_grpc

KINDS = {
    transactions_pb2.WriteOp.PUT: Op.PUT,
    transactions_pb2.WriteOp.DELETE: Op.DELETE,
    transactions_pb2.WriteOp.INCREMENT: Op.INCREMENT,
    transactions_pb2.WriteOp.APPEND: Op.APPEND,
    transactions_pb2.WriteOp.SKETCH_ADD: Op.SKETCH_ADD,
}


class TransactionsService(transactions_pb2_grpc.TransactionsServicer):
    def __init__(self, node: Node) -> None:
        self.node = node

    @unary
    def Commit(
        self, request: transactions_pb2.CommitRequest, context: grpc.ServicerContext
    ) -> transactions_pb2.CommitResponse:
        if len(request.txn_id) < 8:
            raise InvalidArgument("txn_id must hold at least 8 random bytes", field="txn_id")
        # Every line of this call names the transaction, its refusal's included (logged
        # after the handler returns). Not reset: the call's context ends with the call.
        log_fields.bind(txn_id=request.txn_id.hex())
        reads = [Read(item.map, item.key, item.version) for item in request.reads]
        writes = []
        for position, item in enumerate(request.writes):
            kind = KINDS.get(item.kind)
            if kind is None:
                raise InvalidArgument(
                    f"writes[{position}].kind must be set", field=f"writes[{position}].kind"
                )
            writes.append(
                Write(
                    kind,
                    item.map,
                    item.key,
                    item.value,
                    condition_from(item.condition, item.HasField("condition")),
                )
            )
        result = self.node.transactions.commit(request.txn_id, reads, writes)
        return transactions_pb2.CommitResponse(versions=result.versions, replayed=result.replayed)

    @unary
    def ListTransactions(
        self, request: transactions_pb2.ListTransactionsRequest, context: grpc.ServicerContext
    ) -> transactions_pb2.ListTransactionsResponse:
        response = transactions_pb2.ListTransactionsResponse()
        for flight in self.node.transactions.in_flight():
            response.transactions.add(
                txn_id=flight.txn_id.hex(),
                state=f"in flight: {flight.phase}",
                partitions=flight.partitions,
                lease_expires_at_ms=flight.lease_expires_ms,
                started_at_ms=flight.started_ms,
            )
        in_flight = {flight.txn_id for flight in self.node.transactions.in_flight()}
        seen: set[bytes] = set()
        for index, partition in enumerate(self.node.backend.partitions):
            for staged in partition.staged_transactions():
                if staged.txn_id in in_flight or staged.txn_id in seen:
                    continue
                seen.add(staged.txn_id)
                response.transactions.add(
                    txn_id=staged.txn_id.hex(),
                    state=f"in doubt: {staged.state} on partition {index}",
                    partitions=[index],
                    lease_expires_at_ms=staged.lease_expires_ms,
                )
        return response

    @unary
    def TransactionStory(
        self, request: transactions_pb2.TransactionStoryRequest, context: grpc.ServicerContext
    ) -> transactions_pb2.TransactionStoryResponse:
        story = self.node.stories.story(request.txn_id)
        if not story:
            from grid.errors import NotFound

            raise NotFound(
                f"no recorded transitions for transaction {request.txn_id!r} on coordinator "
                f"{self.node.node_id!r}: a story is kept by the coordinator that drove the "
                "transaction (and its recovery sweeps), so with several coordinators ask that one",
                field="txn_id",
            )
        return transactions_pb2.TransactionStoryResponse(
            transitions=[
                transactions_pb2.Transition(at_ms=item.at_ms, event=item.event, detail=item.detail)
                for item in story
            ]
        )

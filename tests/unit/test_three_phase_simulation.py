"""Seeded simulation of three-phase commit: pure coordinators and participants over a bad network.

Every step the scheduler, driven by one seeded Random, delivers a message, duplicates
one, drops one, crashes a participant (which restarts from its own log), crashes a
coordinator (whose transaction is left to recovery), or runs a recovery sweep. After
every step no transaction may be committed on one partition and aborted on another,
and every status record must have moved only forward. At the end the network heals,
recovery runs to quiescence, and every transaction must be all-or-nothing in the data.
A failure prints its seed, which replays it exactly.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import pytest

from coordinator.transactions import three_phase as tpc
from grid.memory.records import Op, Record, RecordKind
from grid.participant import (
    ABORTED,
    COMMITTED,
    FINAL_STATES,
    PENDING,
    PRE_COMMITTED,
    STATUS_ORDER,
    Abort,
    Ack,
    Applied,
    CasStatus,
    Commit,
    CreateStatus,
    Failed,
    Participant,
    Persist,
    PreCommit,
    Prepare,
    Read,
    Send,
    StatusReply,
    Vote,
    Write,
)

PARTITIONS = 4
TRANSACTIONS = 5
LEASE_MS = 1_000
SEEDS = range(150)


@dataclass
class Node:
    """A participant and its durable log; a crash keeps only the log."""

    index: int
    log: list[Record] = field(default_factory=list)
    participant: Participant = field(init=False)

    def __post_init__(self) -> None:
        self.participant = Participant(self.index)

    def handle(self, event: Any) -> Any:
        reply = None
        for action in self.participant.handle(event):
            if isinstance(action, Persist):
                self.log.append(action.record)
            elif isinstance(action, Send):
                reply = action.reply
        return reply

    def crash(self) -> None:
        self.participant = Participant(self.index)
        for record in self.log:
            self.participant.replay(record)


@dataclass
class Message:
    txn: int
    to_partition: int
    event: Any
    # What the coordinator should hear back (a function of the reply), or None for recovery.
    incarnation: int


@dataclass
class Txn:
    index: int
    txn_id: bytes
    participants: tuple[int, ...]
    writes: dict[int, tuple[Write, ...]]
    reads: dict[int, tuple[Read, ...]]
    status_partition: int
    machine: tpc.ThreePhaseCommit | None
    incarnation: int = 0
    outcome: str | None = None


class Simulation:
    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.nodes = [Node(index) for index in range(PARTITIONS)]
        self.network: list[Message] = []
        self.txns: list[Txn] = []
        self.now_ms = 0
        for index in range(TRANSACTIONS):
            count = self.rng.choice((2, 3))
            participants = tuple(sorted(self.rng.sample(range(PARTITIONS), count)))
            writes: dict[int, tuple[Write, ...]] = {}
            reads: dict[int, tuple[Read, ...]] = {}
            for partition in participants:
                own = Write(Op.PUT, "m", f"t{index}-p{partition}", f'{{"t": {index}}}'.encode())
                extra: list[Write] = [own]
                if self.rng.random() < 0.5:
                    # A shared key makes some transactions conflict and vote no.
                    extra.append(Write(Op.PUT, "m", f"hot-p{partition}", b"1"))
                if self.rng.random() < 0.4:
                    extra.append(Write(Op.INCREMENT, "m", f"count-p{partition}", b'{"n": 1}'))
                writes[partition] = tuple(extra)
                reads[partition] = ()
            txn = Txn(
                index,
                index.to_bytes(2, "big") + seed.to_bytes(6, "big"),
                participants,
                writes,
                reads,
                self.rng.randrange(PARTITIONS),
                tpc.ThreePhaseCommit(participants),
            )
            self.txns.append(txn)
            assert txn.machine is not None
            self._send(txn, txn.machine.start())

    # The coordinator side ----------------------------------------------------------

    def _send(self, txn: Txn, actions: list[tpc.Action]) -> None:
        for action in actions:
            event: Any
            if isinstance(action, tpc.CreateStatus):
                event = CreateStatus(
                    txn.txn_id, txn.participants, self.now_ms + LEASE_MS, self.now_ms
                )
                partition = txn.status_partition
            elif isinstance(action, tpc.SendPrepare):
                partition = action.partition
                event = Prepare(
                    txn.txn_id,
                    txn.reads[partition],
                    txn.writes[partition],
                    self.now_ms + LEASE_MS,
                    txn.status_partition,
                )
            elif isinstance(action, tpc.SwapStatus):
                partition = txn.status_partition
                event = CasStatus(txn.txn_id, action.expected, action.new, self.now_ms)
            elif isinstance(action, tpc.SendPreCommit):
                partition, event = action.partition, PreCommit(txn.txn_id)
            elif isinstance(action, tpc.SendCommit):
                partition, event = action.partition, Commit(txn.txn_id)
            elif isinstance(action, tpc.SendAbort):
                partition, event = action.partition, Abort(txn.txn_id)
            else:
                assert isinstance(action, tpc.Finish)
                txn.outcome = action.outcome
                continue
            self.network.append(Message(txn.index, partition, event, txn.incarnation))

    def _feedback(self, txn: Txn, message: Message, reply: Any) -> None:
        if txn.machine is None or message.incarnation != txn.incarnation:
            return  # the coordinator that sent it has crashed
        event = message.event
        feedback: tpc.Event
        if isinstance(event, CreateStatus):
            assert isinstance(reply, StatusReply) and reply.state is not None
            feedback = tpc.StatusCreated(PENDING if reply.swapped else reply.state)
        elif isinstance(event, Prepare):
            assert isinstance(reply, Vote)
            feedback = tpc.Voted(message.to_partition, reply.yes, reply.reason)
        elif isinstance(event, CasStatus):
            assert isinstance(reply, StatusReply)
            feedback = tpc.StatusSwapped(reply.swapped, reply.state)
        else:
            assert isinstance(reply, Ack | Applied), reply
            feedback = tpc.Acknowledged(message.to_partition)
        self._send(txn, txn.machine.handle(feedback))

    # Scheduler -----------------------------------------------------------------------

    def step(self) -> None:
        self.now_ms += self.rng.randrange(0, 120)
        choice = self.rng.random()
        if self.network and choice < 0.70:
            position = self.rng.randrange(len(self.network))
            message = self.network[position]
            duplicate = self.rng.random() < 0.1
            if not duplicate:
                self.network.pop(position)
            self._deliver(message)
        elif self.network and choice < 0.78:
            self.network.pop(self.rng.randrange(len(self.network)))
        elif choice < 0.84:
            self.nodes[self.rng.randrange(PARTITIONS)].crash()
        elif choice < 0.88:
            live = [txn for txn in self.txns if txn.machine is not None and txn.outcome is None]
            if live:
                victim = self.rng.choice(live)
                victim.machine = None
                victim.incarnation += 1
        else:
            self.recover(everything=False)

    def _deliver(self, message: Message) -> None:
        reply = self.nodes[message.to_partition].handle(message.event)
        assert not isinstance(reply, Failed), f"seed {self.seed}: {reply}"
        self._feedback(self.txns[message.txn], message, reply)

    # Recovery: the termination rule of the sweeper, for transactions past their lease --

    def recover(self, *, everything: bool) -> None:
        for txn in self.txns:
            status_node = self.nodes[txn.status_partition]
            record = status_node.participant.statuses.get(txn.txn_id)
            staged = [node for node in self.nodes if txn.txn_id in node.participant.staged]
            expired = everything or (record is not None and record.lease_expires_ms <= self.now_ms)
            if record is None:
                if staged and (everything or txn.machine is None):
                    for node in staged:
                        node.handle(Abort(txn.txn_id))
                continue
            if not expired:
                continue
            state = record.state
            if state not in FINAL_STATES:
                decision = tpc.recovery_decision(
                    state, [node.participant.staged[txn.txn_id].state for node in staged]
                )
                while state not in FINAL_STATES:
                    if state == PENDING:
                        target = PRE_COMMITTED if decision == COMMITTED else ABORTED
                        reply = status_node.handle(CasStatus(txn.txn_id, PENDING, target, 0))
                    else:
                        reply = status_node.handle(
                            CasStatus(txn.txn_id, PRE_COMMITTED, COMMITTED, 0)
                        )
                    state = reply.state
            for node in staged:
                node.handle(Commit(txn.txn_id) if state == COMMITTED else Abort(txn.txn_id))

    # Invariants ------------------------------------------------------------------------

    def check(self) -> None:
        for txn in self.txns:
            decisions = set()
            for node in self.nodes:
                for record in node.log:
                    if record.meta.get("txn") == txn.txn_id.hex():
                        if record.kind == RecordKind.COMMITTED:
                            decisions.add(COMMITTED)
                        elif record.kind == RecordKind.ABORTED:
                            decisions.add(ABORTED)
            assert len(decisions) <= 1, (
                f"seed {self.seed}: transaction {txn.index} both committed and aborted"
            )
            states = [
                record.meta["state"]
                for record in self.nodes[txn.status_partition].log
                if record.kind == RecordKind.STATUS and record.meta.get("txn") == txn.txn_id.hex()
            ]
            ranks = [STATUS_ORDER[state] for state in states]
            assert ranks == sorted(ranks), f"seed {self.seed}: status went back: {states}"
            assert not (COMMITTED in states and ABORTED in states), f"seed {self.seed}: {states}"
            if COMMITTED in decisions:
                assert PRE_COMMITTED in states or COMMITTED in states, (
                    f"seed {self.seed}: committed on a partition before the status record said so"
                )

    def heal(self) -> None:
        """Deliver everything, crash nothing, recover until nothing is left staged."""
        for _ in range(50):
            while self.network:
                self._deliver(self.network.pop(0))
            self.recover(everything=True)
            if not any(node.participant.staged for node in self.nodes) and not self.network:
                return
        raise AssertionError(f"seed {self.seed}: transactions still staged after healing")

    def check_atomic_data(self) -> None:
        for node in self.nodes:
            node.crash()  # recovery from the log alone must give the same answer
        for txn in self.txns:
            present = [
                node.participant.get("m", f"t{txn.index}-p{partition}") is not None
                for partition, node in enumerate(self.nodes)
                if partition in txn.participants
            ]
            assert all(present) or not any(present), (
                f"seed {self.seed}: transaction {txn.index} applied on some partitions only"
            )
            record = self.nodes[txn.status_partition].participant.statuses.get(txn.txn_id)
            if all(present):
                assert record is not None and record.state == COMMITTED, f"seed {self.seed}"
            if txn.outcome == COMMITTED:
                assert all(present), f"seed {self.seed}: reported committed but not applied"
        counters = {
            partition: sum(
                1
                for txn in self.txns
                if partition in txn.participants
                and any(write.key == f"count-p{partition}" for write in txn.writes[partition])
                and self.nodes[partition].participant.get("m", f"t{txn.index}-p{partition}")
            )
            for partition in range(PARTITIONS)
        }
        for partition, expected in counters.items():
            entry = self.nodes[partition].participant.get("m", f"count-p{partition}")
            value = 0 if entry is None else int(entry[:-8].decode().split(":")[1].rstrip("}"))
            assert value == expected, (
                f"seed {self.seed}: increments applied {value}, not {expected}"
            )


@pytest.mark.parametrize("seed", SEEDS)
def test_three_phase_commit_is_atomic_under_crashes_and_a_bad_network(seed: int) -> None:
    simulation = Simulation(seed)
    for _ in range(400):
        simulation.step()
        simulation.check()
    simulation.heal()
    simulation.check()
    simulation.check_atomic_data()


def test_the_simulation_sees_both_outcomes() -> None:
    """The schedule must actually produce commits and aborts, or the test proves nothing."""
    outcomes: set[bool] = set()
    for seed in range(20):
        simulation = Simulation(seed)
        for _ in range(400):
            simulation.step()
        simulation.heal()
        for txn in simulation.txns:
            node = simulation.nodes[txn.participants[0]]
            outcomes.add(
                node.participant.get("m", f"t{txn.index}-p{txn.participants[0]}") is not None
            )
    assert outcomes == {True, False}

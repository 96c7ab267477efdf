"""Seeded simulation of three-phase commit: the shipped commit driver and recovery sweeper
over pure participants and a bad network.

Each transaction is driven by `coordinator.transactions.driver.CommitDriver` (the code the
transaction manager runs), its requests carried over a simulated network; recovery is
`coordinator.transactions.recovery.RecoverySweeper` (the code every coordinator runs),
on a `TransactionManager` whose partitions are the simulated ones and whose clock is
the simulation's. Transactions read keys (validated at prepare) and write, overwrite
and increment them.

Every step the scheduler, driven by one seeded Random, delivers a message, duplicates
one, drops one, crashes a participant (which restarts from its own log), crashes a
coordinator (whose transaction is left to recovery), or runs a recovery sweep (whose
calls may fail part way, as over a network). After every step no transaction may be
committed on one partition and aborted on another, and every status record must have
moved only forward. At the end the network heals, recovery runs to quiescence, and
every transaction must be all-or-nothing in the data. A failure prints its seed,
which replays it exactly.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from coordinator.clock import ManualClock
from coordinator.transactions.driver import CommitDriver, Request
from coordinator.transactions.faults import FaultPoints
from coordinator.transactions.manager import TransactionConfig, TransactionManager
from coordinator.transactions.planning import PartitionWork
from coordinator.transactions.recovery import RecoverySweeper
from coordinator.transactions.story import Stories
from grid.backend import StagedView, StatusView, SweepStatuses, sweep_statuses_by_index
from grid.entry import version_of
from grid.errors import GridError, Unavailable
from grid.memory.records import Op, Record, RecordKind
from grid.participant import (
    ABORTED,
    COMMITTED,
    PRE_COMMITTED,
    STATUS_ORDER,
    Commit,
    Failed,
    Participant,
    Persist,
    Read,
    Reply,
    Send,
    Write,
)
from grid.versions import VersionStats

PARTITIONS = 4
TRANSACTIONS = 5
LEASE_MS = 1_000
SEEDS = range(150)
START_MS = 1_700_000_000_000


@dataclass
class Node:
    """A participant and its durable log; a crash keeps only the log."""

    index: int
    log: list[Record] = field(default_factory=list)
    participant: Participant = field(init=False)

    def __post_init__(self) -> None:
        self.participant = Participant(self.index)

    def handle(self, event: Any) -> Reply:
        reply: Reply | None = None
        for action in self.participant.handle(event):
            if isinstance(action, Persist):
                self.log.append(action.record)
            elif isinstance(action, Send):
                reply = action.reply
        assert reply is not None
        return reply

    def crash(self) -> None:
        self.participant = Participant(self.index)
        for record in self.log:
            self.participant.replay(record)


class SimulatedPartition:
    """A node seen as the transaction manager sees a partition (grid.backend.PartitionStore).

    `unreachable` decides, per call, whether the network loses it: the sweeper's calls
    then fail part way through a pass, as they may in production.
    """

    def __init__(self, node: Node, unreachable: Callable[[], bool]) -> None:
        self.node = node
        self.index = node.index
        self._unreachable = unreachable

    def step(self, event: Any) -> Reply:
        if self._unreachable():
            raise Unavailable(f"partition {self.index} did not answer")
        reply = self.node.handle(event)
        if isinstance(reply, Failed):
            raise reply.error
        return reply

    def apply(self, event: Any) -> tuple[Reply, Callable[[], None]]:
        return self.step(event), _nothing

    def commit_version(self) -> int:
        return self.node.participant.version

    def version_stats(self) -> VersionStats:
        return self.node.participant.versions.stats

    def get(self, map_name: str, key: str) -> bytes | None:
        return self.node.participant.get(map_name, key)

    def get_at(self, map_name: str, key: str, version: int) -> bytes | None:
        return self.node.participant.read_at(map_name, key, version)

    def items(self, map_name: str) -> list[tuple[str, bytes]]:
        return self.items_at(map_name, self.node.participant.version)

    def items_at(self, map_name: str, version: int) -> list[tuple[str, bytes]]:
        return self.node.participant.items_at(map_name, version)

    def status_records(self) -> list[StatusView]:
        return [
            StatusView(txn_id, s.state, s.participants, s.lease_expires_ms, s.updated_ms)
            for txn_id, s in self.node.participant.statuses.items()
        ]

    def undecided_statuses(self) -> list[StatusView]:
        return [self._view(txn_id) for txn_id in self.node.participant.undecided]

    def status_record(self, txn_id: bytes) -> StatusView | None:
        return self._view(txn_id) if txn_id in self.node.participant.statuses else None

    def decided_statuses(self, updated_by_ms: int, limit: int) -> list[StatusView]:
        found = self.node.participant.decided_statuses(updated_by_ms, limit)
        return [self._view(txn_id) for txn_id in found]

    def _view(self, txn_id: bytes) -> StatusView:
        s = self.node.participant.statuses[txn_id]
        return StatusView(txn_id, s.state, s.participants, s.lease_expires_ms, s.updated_ms)

    def sweep_statuses(
        self, staged: Sequence[bytes], updated_by_ms: int, limit: int
    ) -> SweepStatuses:
        return sweep_statuses_by_index(self, staged, updated_by_ms, limit)

    def staged_transactions(self) -> list[StagedView]:
        return [
            StagedView(txn_id, staged.state, staged.lease_expires_ms, staged.status_partition)
            for txn_id, staged in self.node.participant.staged.items()
            if staged.durable
        ]


def _nothing() -> None:
    """Nothing to wait for: a simulated log is durable at once."""


@dataclass
class Message:
    txn: int
    request: Request
    # The coordinator incarnation that sent it: a crashed coordinator hears nothing back.
    incarnation: int


@dataclass
class Txn:
    index: int
    txn_id: bytes
    participants: tuple[int, ...]
    work: dict[int, PartitionWork]
    driver: CommitDriver | None
    incarnation: int = 0
    outcome: str | None = None


class Simulation:
    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.clock = ManualClock(START_MS)
        self.nodes = [Node(index) for index in range(PARTITIONS)]
        # Calls of the sweeper fail at random while `flaky` is set (during the run).
        self.flaky = True
        self.partitions = [
            SimulatedPartition(node, lambda: self.flaky and self.rng.random() < 0.05)
            for node in self.nodes
        ]
        self.stories = Stories(self.clock)
        self.faults = FaultPoints()
        # The recovering coordinator: the shipped manager and sweeper over the same nodes.
        self.manager = TransactionManager(
            self.partitions,
            None,  # type: ignore[arg-type]  # the simulation plans its transactions itself
            clock=self.clock,
            config=TransactionConfig(lease_ms=LEASE_MS, status_retention_ms=60 * LEASE_MS),
            faults=self.faults,
            stories=self.stories,
        )
        self.sweeper = RecoverySweeper(self.manager)
        self.sweeps_cut = 0
        self.recovered = {COMMITTED: 0, ABORTED: 0}
        self.network: list[Message] = []
        self.txns: list[Txn] = []
        for index in range(TRANSACTIONS):
            count = self.rng.choice((2, 3))
            participants = tuple(sorted(self.rng.sample(range(PARTITIONS), count)))
            work: dict[int, PartitionWork] = {}
            for partition in participants:
                own = Write(Op.PUT, "m", f"t{index}-p{partition}", f'{{"t": {index}}}'.encode())
                writes: list[Write] = [own]
                reads: list[Read] = []
                if self.rng.random() < 0.5:
                    # A shared key makes some transactions conflict and vote no.
                    writes.append(Write(Op.PUT, "m", f"hot-p{partition}", b"1"))
                if self.rng.random() < 0.4:
                    writes.append(Write(Op.INCREMENT, "m", f"count-p{partition}", b'{"n": 1}'))
                if self.rng.random() < 0.4:
                    # A read of the version seen now: valid at prepare only if unchanged.
                    entry = self.nodes[partition].participant.get("m", f"hot-p{partition}")
                    version = 0 if entry is None else version_of(entry)
                    reads.append(Read("m", f"hot-p{partition}", version))
                work[partition] = PartitionWork(reads, writes)
            txn_id = index.to_bytes(2, "big") + seed.to_bytes(6, "big")
            txn = Txn(index, txn_id, participants, work, self._driver(txn_id, work))
            self.txns.append(txn)
            assert txn.driver is not None
            self._send(txn, txn.driver.start())

    def _driver(self, txn_id: bytes, work: dict[int, PartitionWork]) -> CommitDriver:
        return CommitDriver(
            txn_id,
            work,
            self.manager.status_partition(txn_id),
            self.clock.now_ms() + LEASE_MS,
            clock=self.clock,
            stories=self.stories,
            faults=self.faults,
        )

    # The coordinator side: the driver's requests over the network ------------------

    def _send(self, txn: Txn, requests: list[Request]) -> None:
        commits = [request for request in requests if isinstance(request.event, Commit)]
        if commits:
            # One place in the commit order for all of the transaction's commits, as
            # the manager gives them.
            with self.manager.sequence.commit() as version:
                pass
        for request in requests:
            sent = request
            if isinstance(request.event, Commit):
                sent = replace(request, event=replace(request.event, version=version))
            self.network.append(Message(txn.index, sent, txn.incarnation))
        if txn.driver is not None and txn.driver.finish is not None:
            txn.outcome = txn.driver.finish.outcome

    def _feedback(self, txn: Txn, message: Message, reply: Reply) -> None:
        if txn.driver is None or message.incarnation != txn.incarnation:
            return  # the coordinator that sent it has crashed
        self._send(txn, txn.driver.on_reply(message.request, reply))

    # Scheduler -----------------------------------------------------------------------

    def step(self) -> None:
        self.clock.advance_ms(self.rng.randrange(0, 120))
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
            live = [txn for txn in self.txns if txn.driver is not None and txn.outcome is None]
            if live:
                victim = self.rng.choice(live)
                victim.driver = None
                victim.incarnation += 1
        else:
            self.recover(everything=False)

    def _deliver(self, message: Message) -> None:
        reply = self.nodes[message.request.partition].handle(message.request.event)
        assert not isinstance(reply, Failed), f"seed {self.seed}: {reply}"
        self._feedback(self.txns[message.txn], message, reply)

    def recover(self, *, everything: bool) -> None:
        """One pass of the shipped sweeper; a call lost on the way ends the pass early,
        and the next pass must finish the work (sweeps are idempotent)."""
        try:
            report = self.sweeper.sweep(everything=everything)
        except GridError:
            assert self.flaky, f"seed {self.seed}: a sweep failed with a reliable network"
            self.sweeps_cut += 1
            return
        self.recovered[COMMITTED] += report.committed
        self.recovered[ABORTED] += report.aborted

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
                for record in self.nodes[self.manager.status_partition(txn.txn_id)].log
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
        self.flaky = False
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
            status_node = self.nodes[self.manager.status_partition(txn.txn_id)]
            record = status_node.participant.statuses.get(txn.txn_id)
            if all(present):
                assert record is not None and record.state == COMMITTED, f"seed {self.seed}"
            if txn.outcome == COMMITTED:
                assert all(present), f"seed {self.seed}: reported committed but not applied"
        counters = {
            partition: sum(
                1
                for txn in self.txns
                if partition in txn.participants
                and any(write.key == f"count-p{partition}" for write in txn.work[partition].writes)
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
    """The schedule must actually produce commits and aborts, recoveries of both kinds and
    sweeps cut short, or the test proves nothing."""
    outcomes: set[bool] = set()
    recovered = {COMMITTED: 0, ABORTED: 0}
    sweeps_cut = 0
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
        for outcome, count in simulation.recovered.items():
            recovered[outcome] += count
        sweeps_cut += simulation.sweeps_cut
    assert outcomes == {True, False}
    assert recovered[COMMITTED] > 0 and recovered[ABORTED] > 0, recovered
    assert sweeps_cut > 0

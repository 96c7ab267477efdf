"""One suite over every grid backend: the contract of `grid.backend.Backend`.

Each backend in BACKENDS declares how to open it on a fresh data location, and what it
cannot do yet (GAPS): a test that needs a missing capability is a strict expected failure
with the reason, never a skip, so a gap that closes fails the suite until its entry goes.
Today: the embedded memory backend, and the Redis backend on a real redis-server
(`deploy/local/redis.sh`) and on a 3-master Redis Cluster (`deploy/local/redis-cluster.sh`),
both marked `redis`; the Hazelcast backend on a real member (`deploy/local/hazelcast.sh`),
marked `hazelcast`; the Ignite backend on a real node (`deploy/local/ignite.sh`), marked `ignite`.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from grid.backend import Backend, ParticipantHooks, SharedBackend, is_shared
from grid.catalog import Catalog
from grid.entry import value_of, version_of
from grid.errors import Conflict, FailedPrecondition, ReadVersionTooOld, StaleVersion
from grid.hazelcast.backend import HazelcastBackend, HazelcastBackendConfig, drop_namespace
from grid.ignite import backend as ignite
from grid.memory.backend import MemoryBackend, MemoryBackendConfig
from grid.memory.records import Op
from grid.participant import (
    ABORTED,
    COMMITTED,
    PENDING,
    PRE_COMMITTED,
    Abort,
    Applied,
    ApplyOnePhase,
    CasStatus,
    Commit,
    Condition,
    CreateStatus,
    DropMap,
    ForgetStatus,
    ForgetVersions,
    PreCommit,
    Prepare,
    Read,
    ReadStatus,
    StatusReply,
    Vote,
    Write,
)
from grid.redis.backend import RedisBackend, RedisBackendConfig, connect
from tests.support.external_servers import HAZELCAST_CLUSTER_NAME

pytestmark = pytest.mark.conformance

PARTITIONS = 4


def _memory(path: Path) -> MemoryBackend:
    return MemoryBackend(MemoryBackendConfig(data_dir=path, partitions=PARTITIONS))


def _namespace(path: Path) -> str:
    """One Redis namespace per data location: a reopen finds the same records."""
    return "conformance-" + hashlib.sha1(str(path).encode()).hexdigest()[:12]


def _redis_factory(url: str) -> Callable[[Path], Backend]:
    def open_redis(path: Path) -> Backend:
        return RedisBackend(RedisBackendConfig(url, _namespace(path), PARTITIONS))

    return open_redis


def _hazelcast_factory(url: str) -> Callable[[Path], Backend]:
    def open_hazelcast(path: Path) -> Backend:
        return HazelcastBackend(HazelcastBackendConfig(url, _namespace(path), PARTITIONS))

    return open_hazelcast


def _ignite_factory(url: str) -> Callable[[Path], Backend]:
    def open_ignite(path: Path) -> Backend:
        return ignite.IgniteBackend(ignite.IgniteBackendConfig(url, _namespace(path), PARTITIONS))

    return open_ignite


BACKENDS = ("memory", "redis", "redis-cluster", "hazelcast", "ignite")
# What each backend cannot do yet, and why; a test names what it needs.
GAPS: dict[str, dict[str, str]] = {
    "memory": {
        "stale_versions": "one process applies commits in number order: a later number never "
        "reaches a key first",
        "shared": "one process: no commit sequence or clock in a store",
    },
    "redis": {},
    "hazelcast": {},
    "ignite": {},
}
GAPS["redis-cluster"] = GAPS["redis"]


def backends(needs: str | None = None) -> list[Any]:
    params = []
    for name in BACKENDS:
        marks: list[Any] = [pytest.mark.redis] if name.startswith("redis") else []
        if name in ("hazelcast", "ignite"):
            marks.append(getattr(pytest.mark, name))
        if needs is not None and needs in GAPS[name]:
            marks.append(pytest.mark.xfail(strict=True, reason=f"{name}: {GAPS[name][needs]}"))
        params.append(pytest.param(name, marks=marks))
    return params


def _hooks(catalog: Catalog) -> ParticipantHooks:
    def no_sketches(map_name: str, current: bytes | None, items: bytes) -> bytes:
        raise AssertionError("no sketch maps in this suite")

    return ParticipantHooks(
        validators=catalog.validator, guarded_field=catalog.is_guarded, sketch_apply=no_sketches
    )


class Opened:
    def __init__(self, factory: Callable[[Path], Backend], path: Path) -> None:
        self.factory = factory
        self.path = path
        self.backend = factory(path)
        self.catalog = Catalog(self.backend.catalog_store)
        self.backend.open(_hooks(self.catalog))

    def reopen(self) -> None:
        self.backend.close()
        self.backend = self.factory(self.path)
        self.catalog = Catalog(self.backend.catalog_store)
        self.backend.open(_hooks(self.catalog))

    def step(self, partition: int, event: object) -> object:
        return self.backend.partitions[partition].step(event)  # type: ignore[arg-type]


@pytest.fixture(params=backends())
def opened(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opened]:
    path = tmp_path / request.param
    shared = request.param.startswith("redis")
    hazelcast_url = ignite_url = ""
    if shared:
        fixture = "redis_cluster_url" if request.param == "redis-cluster" else "redis_url"
        url: str = request.getfixturevalue(fixture)
        factory = _redis_factory(url)
    elif request.param == "hazelcast":
        address = request.getfixturevalue("hazelcast_address")
        hazelcast_url = f"hazelcast://{address}/{HAZELCAST_CLUSTER_NAME}"
        factory = _hazelcast_factory(hazelcast_url)
    elif request.param == "ignite":
        ignite_url = "ignite://" + request.getfixturevalue("ignite_address")
        factory = _ignite_factory(ignite_url)
    else:
        factory = _memory
    backend = Opened(factory, path)
    try:
        yield backend
    finally:
        if hazelcast_url:
            assert isinstance(backend.backend, HazelcastBackend)
            drop_namespace(backend.backend.client, _namespace(path))
        backend.backend.close()
        if ignite_url:
            client = ignite.connect(ignite_url)
            try:
                ignite.drop_namespace(client, _namespace(path))
            finally:
                client.close()
        if shared:
            _drop_namespace(url, _namespace(path))


def _drop_namespace(url: str, namespace: str) -> None:
    client = connect(url)
    try:
        # One DELETE per key: on a cluster, the keys of several partitions are on several nodes.
        for name in list(client.scan_iter(match=f"{{{namespace}:*", count=1000)):
            client.delete(name)
    finally:
        client.close()


def put(key: str, value: object, condition: Condition | None = None) -> Write:
    return Write(Op.PUT, "m", key, orjson.dumps(value), condition)


def test_one_phase_writes_are_read_back_with_increasing_versions(opened: Opened) -> None:
    first = opened.step(0, ApplyOnePhase(b"r1", (), (put("a", {"n": 1}),)))
    second = opened.step(0, ApplyOnePhase(b"r2", (), (put("a", {"n": 2}),)))
    assert isinstance(first, Applied) and isinstance(second, Applied)
    assert second.versions[0] > first.versions[0] > 0
    entry = opened.backend.partitions[0].get("m", "a")
    assert entry is not None
    assert orjson.loads(value_of(entry)) == {"n": 2}
    assert version_of(entry) == second.versions[0]
    assert opened.backend.partitions[0].items("m") == [("a", entry)]


def test_a_retried_request_applies_once(opened: Opened) -> None:
    first = opened.step(1, ApplyOnePhase(b"same", (), (put("a", 1),)))
    again = opened.step(1, ApplyOnePhase(b"same", (), (put("a", 1),)))
    assert isinstance(first, Applied) and isinstance(again, Applied)
    assert again.replayed and again.versions == first.versions


def test_a_retried_request_with_an_increment_and_a_read_of_its_key_applies_once(
    opened: Opened,
) -> None:
    """A commit retried after its coordinator died (the SDK sends the same request again
    elsewhere) finds its own write in the way of its read: the answer is the first one,
    never a conflict about a commit that happened (the client would run it again)."""
    created = opened.step(1, ApplyOnePhase(b"made", (), (put("a", {"n": 1}),)))
    assert isinstance(created, Applied)
    increment = Write(Op.INCREMENT, "m", "a", orjson.dumps({"n": 2}))
    event = ApplyOnePhase(b"bump", (Read("m", "a", created.versions[0]),), (increment,))
    first = opened.step(1, event)
    again = opened.step(1, event)
    assert isinstance(first, Applied) and isinstance(again, Applied)
    assert again.replayed and again.versions == first.versions
    entry = opened.backend.partitions[1].get("m", "a")
    assert entry is not None and orjson.loads(value_of(entry)) == {"n": 3}
    with pytest.raises(Conflict):  # another request with the same stale read still conflicts
        opened.step(1, ApplyOnePhase(b"other", event.reads, (increment,)))


def test_conditions_and_read_validation(opened: Opened) -> None:
    applied = opened.step(0, ApplyOnePhase(b"r1", (), (put("a", 1),)))
    assert isinstance(applied, Applied)
    with pytest.raises(FailedPrecondition):
        opened.step(0, ApplyOnePhase(b"r2", (), (put("a", 2, Condition("if_absent")),)))
    with pytest.raises(Conflict):
        opened.step(0, ApplyOnePhase(b"r3", (Read("m", "a", 999),), (put("a", 3),)))
    swapped = opened.step(
        0, ApplyOnePhase(b"r4", (), (put("a", 4, Condition("if_version", applied.versions[0])),))
    )
    assert isinstance(swapped, Applied)


def test_prepare_locks_until_commit_and_commit_applies(opened: Opened) -> None:
    vote = opened.step(2, Prepare(b"t1", (), (put("k", 1),), 10**13, 0))
    assert isinstance(vote, Vote) and vote.yes
    with pytest.raises(Conflict):
        opened.step(2, ApplyOnePhase(b"r", (), (put("k", 2),)))
    assert opened.backend.partitions[2].get("m", "k") is None, "staged writes stay invisible"
    assert [view.txn_id for view in opened.backend.partitions[2].staged_transactions()] == [b"t1"]
    opened.step(2, PreCommit(b"t1"))
    opened.step(2, Commit(b"t1"))
    assert opened.backend.partitions[2].get("m", "k") is not None
    assert opened.backend.partitions[2].staged_transactions() == []


def test_abort_releases_and_discards(opened: Opened) -> None:
    opened.step(3, Prepare(b"t2", (), (put("k", 1),), 10**13, 0))
    opened.step(3, Abort(b"t2"))
    assert opened.backend.partitions[3].get("m", "k") is None
    applied = opened.step(3, ApplyOnePhase(b"r", (), (put("k", 2),)))
    assert isinstance(applied, Applied)
    late = opened.step(3, Prepare(b"t2", (), (put("k", 9),), 10**13, 0))
    assert isinstance(late, Vote) and not late.yes, "a decided transaction cannot be staged again"


def test_status_records_change_only_by_compare_and_set(opened: Opened) -> None:
    created = opened.step(0, CreateStatus(b"t3", (0, 1), 10**13, 1))
    assert isinstance(created, StatusReply) and created.state == PENDING and created.swapped
    lost = opened.step(0, CasStatus(b"t3", PRE_COMMITTED, COMMITTED, 2))
    assert isinstance(lost, StatusReply) and not lost.swapped and lost.state == PENDING
    won = opened.step(0, CasStatus(b"t3", PENDING, ABORTED, 3))
    assert isinstance(won, StatusReply) and won.swapped and won.state == ABORTED
    read = opened.step(0, ReadStatus(b"t3"))
    assert isinstance(read, StatusReply) and read.state == ABORTED
    assert [view.state for view in opened.backend.partitions[0].status_records()] == [ABORTED]


def test_the_sweeper_reads_undecided_records_one_record_and_decided_ones_by_time(
    opened: Opened,
) -> None:
    """What the recovery sweeper reads instead of every record: the undecided ones, one by
    id, and decided ones updated by a time (oldest first, at most a limit; the memory backend
    orders them as decided, the same while its clock does not step back); each follows the
    swaps, a forget, and a reopen."""
    partition = opened.backend.partitions[0]
    opened.step(0, CreateStatus(b"u1", (0, 1), 10**13, 10))
    for txn, updated, outcome in ((b"d1", 20, COMMITTED), (b"d2", 30, ABORTED)):
        opened.step(0, CreateStatus(txn, (0,), 10**13, 1))
        opened.step(0, CasStatus(txn, PENDING, outcome, updated))
    assert [view.txn_id for view in partition.undecided_statuses()] == [b"u1"]
    record = partition.status_record(b"d1")
    assert record is not None and (record.state, record.updated_ms) == (COMMITTED, 20)
    assert partition.status_record(b"none") is None
    assert [view.txn_id for view in partition.decided_statuses(25, 10)] == [b"d1"]
    assert [view.txn_id for view in partition.decided_statuses(30, 1)] == [b"d1"]
    assert {view.txn_id for view in partition.decided_statuses(30, 10)} == {b"d1", b"d2"}
    opened.step(0, CasStatus(b"u1", PENDING, COMMITTED, 40))
    assert partition.undecided_statuses() == []
    assert b"u1" in {view.txn_id for view in partition.decided_statuses(40, 10)}
    opened.step(0, ForgetStatus(b"d1"))
    opened.reopen()
    partition = opened.backend.partitions[0]
    assert {view.txn_id for view in partition.decided_statuses(40, 10)} == {b"d2", b"u1"}
    assert partition.status_record(b"d1") is None
    opened.step(0, CreateStatus(b"u2", (0,), 10**13, 50))
    assert [view.txn_id for view in partition.undecided_statuses()] == [b"u2"]
    # The same three in the one call a sweep makes: asked about two staged transactions.
    read = partition.sweep_statuses([b"u2", b"d2"], 40, 10)
    assert [view.txn_id for view in read.undecided] == [b"u2"]
    assert [(view.txn_id, view.state) for view in read.staged] == [(b"d2", ABORTED)]
    assert {view.txn_id for view in read.due} == {b"d2", b"u1"}


# The backends whose partitions count the status records their sweep reads look at in the
# store (``status_records_read``); Redis and memory keep the same indexes in sorted sets and
# Python structures, whose reads are their commands'.
COUNTING_STATUS_READS = [
    param for param in backends() if param.values[0] in ("hazelcast", "ignite")
]


@pytest.mark.parametrize("opened", COUNTING_STATUS_READS, indirect=True)
def test_a_sweep_does_not_read_the_decided_records_kept_that_are_not_yet_due(
    opened: Opened,
) -> None:
    """A recovery sweep's cost must not grow with the decided records kept for retries: with
    many kept (decided after the cutoff), a sweep looks at the undecided records, the staged
    transaction it asks about, the due record, and the one kept record that ends the due ones,
    never the rest (counted, not timed)."""
    partition: Any = opened.backend.partitions[0]
    kept = 40
    opened.step(0, CreateStatus(b"due", (0,), 10**13, 1))
    opened.step(0, CasStatus(b"due", PENDING, COMMITTED, 5))
    for number in range(kept):
        txn = b"kept%d" % number
        opened.step(0, CreateStatus(txn, (0,), 10**13, 1))
        opened.step(0, CasStatus(txn, PENDING, ABORTED, 100 + number))
    opened.step(0, CreateStatus(b"open1", (0, 1), 10**13, 1))
    opened.step(0, CreateStatus(b"open2", (0, 1), 10**13, 1))
    before = partition.status_records_read
    read = partition.sweep_statuses([b"kept7"], 50, 100)
    assert sorted(view.txn_id for view in read.undecided) == [b"open1", b"open2"]
    assert [(view.txn_id, view.state) for view in read.staged] == [(b"kept7", ABORTED)]
    assert [view.txn_id for view in read.due] == [b"due"]
    # 2 undecided + 1 staged + 1 due + the first kept record, which ends the due ones.
    assert partition.status_records_read - before <= 5
    assert len(partition.status_records()) == kept + 3


@pytest.mark.parametrize("opened", backends(needs="lease_renewal"), indirect=True)
def test_a_status_swap_to_its_own_state_with_a_lease_renews_the_lease(opened: Opened) -> None:
    """How a coordinator renews the lease of a transaction it drives (another's sweeper
    reads only the lease); a swap that loses renews nothing."""
    opened.step(0, CreateStatus(b"t9", (0, 1), 1_000, 1))
    renewed = opened.step(0, CasStatus(b"t9", PENDING, PENDING, 2, 5_000))
    assert isinstance(renewed, StatusReply) and renewed.swapped
    read = opened.step(0, ReadStatus(b"t9"))
    assert isinstance(read, StatusReply) and (read.state, read.lease_expires_ms) == (PENDING, 5_000)
    opened.step(0, CasStatus(b"t9", PENDING, ABORTED, 3))
    lost = opened.step(0, CasStatus(b"t9", PENDING, PENDING, 4, 9_000))
    assert isinstance(lost, StatusReply) and not lost.swapped
    read = opened.step(0, ReadStatus(b"t9"))
    assert isinstance(read, StatusReply) and (read.state, read.lease_expires_ms) == (ABORTED, 5_000)


def test_everything_survives_a_reopen(opened: Opened) -> None:
    opened.step(0, ApplyOnePhase(b"r1", (), (put("a", {"n": 1}),)))
    opened.step(1, Prepare(b"t4", (), (put("b", 2),), 10**13, 0))
    opened.step(1, PreCommit(b"t4"))
    opened.step(0, CreateStatus(b"t4", (1,), 10**13, 1))
    opened.step(0, CasStatus(b"t4", PENDING, PRE_COMMITTED, 2))
    opened.reopen()
    entry = opened.backend.partitions[0].get("m", "a")
    assert entry is not None and orjson.loads(value_of(entry)) == {"n": 1}
    staged = opened.backend.partitions[1].staged_transactions()
    assert [(view.txn_id, view.state) for view in staged] == [(b"t4", PRE_COMMITTED)]
    assert [view.state for view in opened.backend.partitions[0].status_records()] == [PRE_COMMITTED]
    opened.step(1, Commit(b"t4"))
    assert opened.backend.partitions[1].get("m", "b") is not None
    replay = opened.step(0, ApplyOnePhase(b"r1", (), (put("a", {"n": 1}),)))
    assert isinstance(replay, Applied) and replay.replayed


def test_catalog_persists_through_the_backend_store(opened: Opened) -> None:
    from grid.schema import parse_schema

    opened.catalog.create("accounts", parse_schema({"balance": "int"}), now_ms=1)
    opened.reopen()
    definition = opened.catalog.get("accounts")
    assert definition.schema is not None and definition.schema.by_name["balance"].type == "int"


@pytest.mark.parametrize("opened", backends(needs="shared"), indirect=True)
def test_a_catalog_change_raises_the_version_every_coordinator_confirms(opened: Opened) -> None:
    """What read-your-writes across coordinators rests on: the store's catalog version, read
    alone, is the version of the last change as soon as the change is answered, and a second
    catalog on the store (another coordinator) reloads on its next confirm, not before."""
    from grid.schema import parse_schema

    store: Any = opened.backend.catalog_store
    other = Catalog(store)
    assert other.confirm() is False
    opened.catalog.create("accounts", parse_schema({"balance": "int"}), now_ms=1)
    assert store.version() == opened.catalog.version > 0
    assert other.find("accounts") is None
    assert other.confirm() is True and other.version == store.version()
    assert other.find("accounts") is not None
    other.alter_schema("accounts", parse_schema({"balance": "int", "note": "string"}))
    assert store.version() == other.version == opened.catalog.version + 1
    # A miss reads the store before NOT_FOUND.
    other.create("ledger", None, now_ms=2)
    assert opened.catalog.get("ledger").name == "ledger"
    assert opened.catalog.get("accounts").schema is not None
    assert opened.catalog.get("accounts").schema.version == 2


def test_increments_apply_in_one_phase(opened: Opened) -> None:
    opened.step(0, ApplyOnePhase(b"r1", (), (put("a", {"n": 1}),)))
    increment = Write(Op.INCREMENT, "m", "a", orjson.dumps({"n": 2}))
    applied = opened.step(0, ApplyOnePhase(b"r2", (), (increment,)))
    assert isinstance(applied, Applied)
    entry = opened.backend.partitions[0].get("m", "a")
    assert entry is not None and orjson.loads(value_of(entry)) == {"n": 3}


def test_increments_commit_through_three_phases(opened: Opened) -> None:
    opened.step(1, ApplyOnePhase(b"r1", (), (put("a", {"n": 1}),)))
    increment = Write(Op.INCREMENT, "m", "a", orjson.dumps({"n": 2}))
    vote = opened.step(1, Prepare(b"t", (), (increment,), 10**13, 0))
    assert isinstance(vote, Vote) and vote.yes
    opened.step(1, PreCommit(b"t"))
    opened.step(1, Commit(b"t"))
    entry = opened.backend.partitions[1].get("m", "a")
    assert entry is not None and orjson.loads(value_of(entry)) == {"n": 3}


def test_increments_and_appends_check_their_conditions(opened: Opened) -> None:
    applied = opened.step(2, ApplyOnePhase(b"r1", (), (put("a", {"n": 1, "tags": []}),)))
    assert isinstance(applied, Applied)
    stale = Condition("if_version", applied.versions[0] + 1000)
    with pytest.raises(FailedPrecondition):
        opened.step(
            2,
            ApplyOnePhase(
                b"r2", (), (Write(Op.INCREMENT, "m", "a", orjson.dumps({"n": 1}), stale),)
            ),
        )
    both = (
        Write(Op.INCREMENT, "m", "a", orjson.dumps({"n": 4})),
        Write(Op.APPEND, "m", "a", orjson.dumps({"tags": ["x"]})),
    )
    again = opened.step(2, ApplyOnePhase(b"r3", (), both))
    assert isinstance(again, Applied) and again.versions[0] == again.versions[1] > 0
    entry = opened.backend.partitions[2].get("m", "a")
    assert entry is not None and orjson.loads(value_of(entry)) == {"n": 5, "tags": ["x"]}
    replayed = opened.step(2, ApplyOnePhase(b"r3", (), both))
    assert isinstance(replayed, Applied) and replayed.replayed


def test_a_referenced_key_cannot_be_deleted_until_released(opened: Opened) -> None:
    opened.step(0, ApplyOnePhase(b"r1", (), (put("c1", {"name": "x"}),)))
    opened.step(0, ApplyOnePhase(b"r2", (), (Write(Op.REFERENCE, "m", "c1", b"1"),)))
    with pytest.raises(FailedPrecondition):
        opened.step(0, ApplyOnePhase(b"r3", (), (Write(Op.DELETE, "m", "c1"),)))
    opened.step(0, ApplyOnePhase(b"r4", (), (Write(Op.REFERENCE, "m", "c1", b"-1"),)))
    deleted = opened.step(0, ApplyOnePhase(b"r5", (), (Write(Op.DELETE, "m", "c1"),)))
    assert isinstance(deleted, Applied) and deleted.removed == (0,)


def test_a_reference_staged_by_a_transaction_holds_the_key(opened: Opened) -> None:
    opened.step(1, ApplyOnePhase(b"r1", (), (put("c1", {"name": "x"}),)))
    reference = Write(Op.REFERENCE, "m", "c1", b"1")
    vote = opened.step(1, Prepare(b"t", (), (reference,), 10**13, 0))
    assert isinstance(vote, Vote) and vote.yes
    with pytest.raises(Conflict):
        opened.step(1, ApplyOnePhase(b"r2", (), (Write(Op.DELETE, "m", "c1"),)))
    opened.step(1, PreCommit(b"t"))
    opened.step(1, Commit(b"t"))
    with pytest.raises(FailedPrecondition):
        opened.step(1, ApplyOnePhase(b"r3", (), (Write(Op.DELETE, "m", "c1"),)))


def test_a_reference_and_an_increment_in_one_step(opened: Opened) -> None:
    opened.step(0, ApplyOnePhase(b"r1", (), (put("c1", {"n": 1}),)))
    both = (
        Write(Op.INCREMENT, "m", "c1", orjson.dumps({"n": 1})),
        Write(Op.REFERENCE, "m", "c1", b"1"),
    )
    applied = opened.step(0, ApplyOnePhase(b"r2", (), both))
    assert isinstance(applied, Applied)
    with pytest.raises(FailedPrecondition):
        opened.step(0, ApplyOnePhase(b"r3", (), (Write(Op.DELETE, "m", "c1"),)))


def test_a_map_is_dropped_only_when_no_transaction_holds_its_keys(opened: Opened) -> None:
    opened.step(3, ApplyOnePhase(b"r1", (), (put("a", 1), put("b", 2))))
    opened.step(3, Prepare(b"t", (), (put("a", 3),), 10**13, 0))
    with pytest.raises(FailedPrecondition):
        opened.step(3, DropMap("m"))
    opened.step(3, Abort(b"t"))
    opened.step(3, DropMap("m"))
    partition = opened.backend.partitions[3]
    assert partition.items("m") == []
    assert partition.get("m", "a") is None
    applied = opened.step(3, ApplyOnePhase(b"r2", (), (put("a", 4),)))
    assert isinstance(applied, Applied)
    assert [key for key, _ in partition.items("m")] == ["a"]


def _version(reply: object) -> int:
    assert isinstance(reply, Applied) and reply.versions[0] > 0
    return reply.versions[0]


def test_reads_at_older_versions_see_older_states_until_the_horizon_passes(
    opened: Opened,
) -> None:
    a1 = _version(opened.step(0, ApplyOnePhase(b"r1", (), (put("a", 1),))))
    b1 = _version(opened.step(0, ApplyOnePhase(b"r2", (), (put("b", 1),))))
    a2 = _version(opened.step(0, ApplyOnePhase(b"r3", (), (put("a", 2),))))
    deleted = opened.step(0, ApplyOnePhase(b"r4", (), (Write(Op.DELETE, "m", "b"),)))
    assert isinstance(deleted, Applied) and deleted.removed == (0,)
    c1 = _version(opened.step(0, ApplyOnePhase(b"r5", (), (put("c", 1),))))
    partition = opened.backend.partitions[0]

    def value_at(key: str, version: int) -> object:
        entry = partition.get_at("m", key, version)
        return None if entry is None else orjson.loads(value_of(entry))

    assert value_at("a", a1) == 1 and value_at("a", a2) == 2
    assert value_at("b", b1) == 1 and value_at("b", c1) is None, "deleted after, then gone"
    assert value_at("c", a2) is None, "created after the version"
    assert {key: orjson.loads(value_of(entry)) for key, entry in partition.items_at("m", b1)} == {
        "a": 1,
        "b": 1,
    }
    assert sorted(key for key, _ in partition.items_at("m", c1)) == ["a", "c"]
    # States that ended at or before the horizon go; a read that needed one is refused.
    partition.step(ForgetVersions(c1))
    with pytest.raises(ReadVersionTooOld):
        partition.get_at("m", "a", a1)
    assert value_at("a", c1) == 2


def test_a_get_many_reads_each_key_as_get_and_get_at_do(opened: Opened) -> None:
    """`lookup_many` (coordinator/keyvalue.py's get-many: one read per partition, or one for
    all) answers every key as `get` does, and at a read version as `get_at` does: keys changed,
    deleted or created after it, on several partitions, a key asked twice, one never written."""
    a1 = _version(opened.step(0, ApplyOnePhase(b"r1", (), (put("a", 1),))))
    b1 = _version(opened.step(2, ApplyOnePhase(b"r2", (), (put("b", 1),))))
    a2 = _version(opened.step(0, ApplyOnePhase(b"r3", (), (put("a", 2),))))
    opened.step(2, ApplyOnePhase(b"r4", (), (Write(Op.DELETE, "m", "b"),)))
    c1 = _version(opened.step(2, ApplyOnePhase(b"r5", (), (put("c", 1),))))
    keys = ["a", "b", "c", "never", "a", "d"]
    partitions = [0, 2, 2, 0, 0, 1]
    stores = opened.backend.partitions
    lookup_many = opened.backend.lookup_many
    latest = lookup_many("m", keys, partitions)
    assert latest == [stores[p].get("m", k) for k, p in zip(keys, partitions, strict=True)]
    assert [None if e is None else orjson.loads(value_of(e)) for e in latest] == [
        2,
        None,
        1,
        None,
        2,
        None,
    ]
    for version in (a1, b1, a2, c1):
        at = lookup_many("m", keys, partitions, version)
        assert at == [
            stores[p].get_at("m", k, version) for k, p in zip(keys, partitions, strict=True)
        ], f"at version {version}"
    assert [
        None if e is None else orjson.loads(value_of(e))
        for e in lookup_many("m", keys, partitions, b1)
    ] == [1, 1, None, None, 1, None]
    # A state it needs forgotten: refused as get_at is.
    stores[0].step(ForgetVersions(a2))
    with pytest.raises(ReadVersionTooOld):
        lookup_many("m", ["a"], [0], a1)


def test_reads_at_the_latest_version_are_answered(opened: Opened) -> None:
    applied = opened.step(0, ApplyOnePhase(b"r1", (), (put("a", 1),)))
    assert isinstance(applied, Applied)
    partition = opened.backend.partitions[0]
    latest = partition.commit_version()
    assert latest >= applied.versions[0]
    entry = partition.get_at("m", "a", latest)
    assert entry is not None and orjson.loads(value_of(entry)) == 1
    assert partition.items_at("m", latest) == [("a", entry)]


def test_map_state_moves_with_every_change_and_sizes_count_entries(opened: Opened) -> None:
    partition = opened.backend.partitions[1]
    before = partition.map_state("m")
    version = _version(opened.step(1, ApplyOnePhase(b"r1", (), (put("a", 1),))))
    after = partition.map_state("m")
    assert after.mark != before.mark and after.version == version
    assert partition.map_state("m") == after, "nothing changed: the same mark"
    opened.step(1, ApplyOnePhase(b"r2", (), (put("b", {"name": "x" * 100}),)))
    size = partition.map_size("m")
    assert size.entries == 2 and size.memory_bytes > 100
    changed = partition.map_state("m")
    opened.step(1, DropMap("m"))
    assert partition.map_state("m").mark != changed.mark
    assert partition.map_size("m").entries == 0


@pytest.mark.parametrize("opened", backends(needs="stale_versions"), indirect=True)
def test_a_one_phase_step_numbered_before_a_keys_newest_version_is_refused(
    opened: Opened,
) -> None:
    """Several coordinators: a commit numbered later may reach a key first; the earlier-numbered
    step must take a new number rather than put the key's history out of order."""
    opened.step(2, ApplyOnePhase(b"r1", (), (put("a", {"n": 1}),), version=10))
    with pytest.raises(StaleVersion):
        opened.step(2, ApplyOnePhase(b"r2", (), (put("a", {"n": 2}),), version=5))
    increment = Write(Op.INCREMENT, "m", "a", orjson.dumps({"n": 1}))
    with pytest.raises(StaleVersion):
        opened.step(2, ApplyOnePhase(b"r3", (), (increment,), version=6))
    entry = opened.backend.partitions[2].get("m", "a")
    assert entry is not None and orjson.loads(value_of(entry)) == {"n": 1}
    other = opened.step(2, ApplyOnePhase(b"r4", (), (put("b", 2),), version=7))
    assert isinstance(other, Applied) and other.versions == (7,)


@pytest.mark.parametrize("opened", backends(needs="shared"), indirect=True)
def test_a_shared_store_brings_one_clock_and_one_number_per_transaction(opened: Opened) -> None:
    assert is_shared(opened.backend)
    shared: SharedBackend = opened.backend  # type: ignore[assignment]
    assert abs(shared.time_ms() - time.time() * 1000) < 60_000, "the store's clock, in ms"
    sequence = shared.sequence
    number = sequence.take("t1")
    assert sequence.take("t1") == number, "a transaction holds one number"
    later = sequence.take("t2")
    assert later > number
    assert sequence.read_version() == number - 1
    sequence.release(number)
    sequence.release(later)
    assert sequence.read_version() >= later
    assert sequence.take("t1") > later, "released: a new number"

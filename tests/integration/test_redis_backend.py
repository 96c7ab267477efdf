"""The Redis backend shared by several coordinators: two backends opened on one namespace (as
two coordinators would) see one grid, and every participant step is atomic between them; on
one redis-server and on a 3-master Redis Cluster.

The single-backend contract is tests/conformance/test_backend_contract.py; this file checks what
only sharing can break: a lock taken through one coordinator holds against the other, a
transaction prepared by one is finished by the other (what a recovery sweeper does), status
swaps racing between coordinators have one winner, and conditional writes racing from both
never lose an update.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import orjson
import pytest

from grid.backend import ParticipantHooks
from grid.entry import value_of, version_of
from grid.errors import Conflict, FailedPrecondition, ReadVersionTooOld
from grid.memory.records import Op
from grid.protocol import (
    ABORTED,
    COMMITTED,
    PENDING,
    Applied,
    ApplyOnePhase,
    CasStatus,
    Commit,
    Condition,
    CreateStatus,
    ForgetVersions,
    PreCommit,
    Prepare,
    StatusReply,
    Vote,
    Write,
)
from grid.redis.backend import RedisBackend, RedisBackendConfig, connect
from grid.redis.library import FUNCTION

pytestmark = [pytest.mark.integration, pytest.mark.redis]

PARTITIONS = 4


@pytest.fixture(params=["redis_url", "redis_cluster_url"], ids=["redis", "redis-cluster"])
def coordinators(request: pytest.FixtureRequest) -> Iterator[tuple[RedisBackend, RedisBackend]]:
    url: str = request.getfixturevalue(request.param)
    namespace = f"shared-{uuid.uuid4().hex[:12]}"
    config = RedisBackendConfig(url, namespace, PARTITIONS)
    first, second = RedisBackend(config), RedisBackend(config)
    try:
        yield first, second
    finally:
        first.close()
        second.close()
        client = connect(url)
        for name in list(client.scan_iter(match=f"{{{namespace}:*")):
            client.delete(name)
        client.close()


def put(key: str, value: object, condition: Condition | None = None) -> Write:
    return Write(Op.PUT, "m", key, orjson.dumps(value), condition)


def test_a_lock_taken_through_one_coordinator_holds_against_the_other(
    coordinators: tuple[RedisBackend, RedisBackend],
) -> None:
    first, second = coordinators
    vote = first.partitions[1].step(Prepare(b"t1", (), (put("k", 1),), 10**13, 0))
    assert isinstance(vote, Vote) and vote.yes
    with pytest.raises(Conflict):
        second.partitions[1].step(ApplyOnePhase(b"r1", (), (put("k", 2),)))
    other = second.partitions[1].step(Prepare(b"t2", (), (put("k", 3),), 10**13, 0))
    assert isinstance(other, Vote) and not other.yes
    # The second coordinator finishes what the first prepared, as a recovery sweeper does.
    assert [view.txn_id for view in second.partitions[1].staged_transactions()] == [b"t1"]
    second.partitions[1].step(PreCommit(b"t1"))
    committed = second.partitions[1].step(Commit(b"t1"))
    assert isinstance(committed, Applied)
    entry = first.partitions[1].get("m", "k")
    assert entry is not None and orjson.loads(value_of(entry)) == 1
    assert first.partitions[1].staged_transactions() == []


def test_status_swaps_racing_between_coordinators_have_one_winner(
    coordinators: tuple[RedisBackend, RedisBackend],
) -> None:
    first, second = coordinators
    created = first.partitions[0].step(CreateStatus(b"t", (0, 1), 10**13, 1))
    assert isinstance(created, StatusReply) and created.swapped
    start = threading.Barrier(8)
    replies: list[StatusReply] = []
    lock = threading.Lock()

    def swap(index: int) -> None:
        backend = (first, second)[index % 2]
        outcome = COMMITTED if index % 4 < 2 else ABORTED
        start.wait()
        reply = backend.partitions[0].step(CasStatus(b"t", PENDING, outcome, 2))
        assert isinstance(reply, StatusReply)
        with lock:
            replies.append(reply)

    threads = [threading.Thread(target=swap, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [reply for reply in replies if reply.swapped]
    assert len(winners) == 1
    decided = winners[0].state
    assert all(reply.state == decided for reply in replies)
    assert [view.state for view in second.partitions[0].status_records()] == [decided]


def test_conditional_writes_racing_from_two_coordinators_lose_no_update(
    coordinators: tuple[RedisBackend, RedisBackend],
) -> None:
    first, second = coordinators
    first.partitions[2].step(ApplyOnePhase(b"", (), (put("counter", 0),)))
    rounds = 25
    errors: list[BaseException] = []

    def add_one_each_round(backend: RedisBackend) -> None:
        partition = backend.partitions[2]
        try:
            for _ in range(rounds):
                while True:
                    entry = partition.get("m", "counter")
                    assert entry is not None
                    count = orjson.loads(value_of(entry))
                    condition = Condition("if_version", version_of(entry))
                    try:
                        partition.step(
                            ApplyOnePhase(b"", (), (put("counter", count + 1, condition),))
                        )
                        break
                    except FailedPrecondition:
                        continue  # another coordinator wrote first: read again
        except BaseException as error:
            errors.append(error)

    threads = [
        threading.Thread(target=add_one_each_round, args=(backend,))
        for backend in (first, second, first, second)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    entry = second.partitions[2].get("m", "counter")
    assert entry is not None and orjson.loads(value_of(entry)) == 4 * rounds


def test_a_partition_remembers_a_bounded_number_of_answers(
    coordinators: tuple[RedisBackend, RedisBackend],
) -> None:
    """Answers kept for retries are trimmed oldest first, as the memory participant's are, so
    a long-lived partition does not grow without bound."""
    first, _ = coordinators
    partition = first.partitions[3]
    for index in range(4100):
        partition.step(ApplyOnePhase(f"request-{index}".encode(), (), (put("k", index),)))
    newest = partition.step(ApplyOnePhase(b"request-4099", (), (put("k", 4099),)))
    assert isinstance(newest, Applied) and newest.replayed
    oldest = partition.step(ApplyOnePhase(b"request-0", (), (put("k", 0),)))
    assert isinstance(oldest, Applied) and not oldest.replayed
    client = connect(first.config.url)
    try:
        prefix = f"{{{first.config.namespace}:p3}}:"
        assert client.hlen(prefix + "o") <= 4096
        assert client.llen(prefix + "oq") <= 4096
    finally:
        client.close()


def test_increments_racing_from_two_coordinators_all_count(
    coordinators: tuple[RedisBackend, RedisBackend],
) -> None:
    """An increment is resolved in Python and applied only if the key did not change since it
    was read: increments sent at once through both coordinators all land, none twice."""
    first, second = coordinators
    first.partitions[0].step(ApplyOnePhase(b"", (), (put("hits", {"n": 0}),)))
    rounds = 25
    errors: list[BaseException] = []

    def add(backend: RedisBackend) -> None:
        try:
            for _ in range(rounds):
                increment = Write(Op.INCREMENT, "m", "hits", orjson.dumps({"n": 1}))
                while True:
                    try:
                        backend.partitions[0].step(ApplyOnePhase(b"", (), (increment,)))
                        break
                    except Conflict:
                        continue  # lost every race this time: nothing applied, as the SDK retries
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=add, args=(b,)) for b in (first, second, first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    entry = second.partitions[0].get("m", "hits")
    assert entry is not None and orjson.loads(value_of(entry)) == {"n": 4 * rounds}


def test_increments_prepared_through_both_coordinators_do_not_conflict(
    coordinators: tuple[RedisBackend, RedisBackend],
) -> None:
    """Commutative updates take the I lock: two transactions incrementing one key both vote
    yes, each commits on the value the other left, and an overwrite waits for both."""
    first, second = coordinators
    first.partitions[1].step(ApplyOnePhase(b"", (), (put("stock", {"n": 10}),)))

    def increment(amount: int) -> Write:
        return Write(Op.INCREMENT, "m", "stock", orjson.dumps({"n": amount}))

    one = first.partitions[1].step(Prepare(b"t1", (), (increment(2),), 10**13, 0))
    other = second.partitions[1].step(Prepare(b"t2", (), (increment(3),), 10**13, 0))
    assert isinstance(one, Vote) and one.yes
    assert isinstance(other, Vote) and other.yes
    with pytest.raises(Conflict):
        first.partitions[1].step(ApplyOnePhase(b"", (), (put("stock", {"n": 0}),)))
    second.partitions[1].step(Commit(b"t2"))
    first.partitions[1].step(Commit(b"t1"))
    entry = first.partitions[1].get("m", "stock")
    assert entry is not None and orjson.loads(value_of(entry)) == {"n": 15}
    assert first.partitions[1].staged_transactions() == []


def test_forgetting_old_versions_is_done_in_bounded_slices(
    coordinators: tuple[RedisBackend, RedisBackend],
) -> None:
    """A step forgets at most 512 kept states, so a long backlog never makes one script stall
    the server; the next steps take the rest, and reads below the forgotten are refused."""
    first, _ = coordinators
    partition = first.partitions[2]
    versions = []
    for index in range(1200):
        applied = partition.step(ApplyOnePhase(b"", (), (put("hot", index),)))
        assert isinstance(applied, Applied)
        versions.append(applied.versions[0])
    assert partition.version_stats().kept == 1199
    horizon = versions[-1]
    for expected in (1199 - 512, 1199 - 1024, 0):
        partition.step(ForgetVersions(horizon))
        assert partition.version_stats().kept == expected
    with pytest.raises(ReadVersionTooOld):
        partition.get_at("m", "hot", versions[0])
    latest = partition.get_at("m", "hot", horizon)
    assert latest is not None and orjson.loads(value_of(latest)) == 1199


def test_get_many_reads_every_partition_in_one_pipeline_after_redis_forgot_its_steps(
    redis_url: str,
) -> None:
    """`lookup_many` sends one read script per partition in one pipeline; a Redis that was
    restarted without its data (its function library gone) gets the library again."""
    import uuid

    import redis as redis_client

    from grid.catalog import Catalog
    from grid.memory.records import Op
    from grid.partitioner import Partitioner
    from grid.protocol import ApplyOnePhase, Write
    from grid.redis.backend import RedisBackend, RedisBackendConfig
    from tests.support.shared_store import drop_namespace

    namespace = f"many-{uuid.uuid4().hex[:8]}"
    backend = RedisBackend(RedisBackendConfig(redis_url, namespace, 4))
    try:
        Catalog(backend.catalog_store).create("m", None, now_ms=0)
        partitioner = Partitioner(4)
        keys = [f"k{index}" for index in range(20)]
        for index, key in enumerate(keys[:10]):
            write = (Write(Op.PUT, "m", key, b"%d" % index),)
            backend.partitions[partitioner.partition_of(key)].step(
                ApplyOnePhase(key.encode(), (), write, index + 1)
            )
        flusher = redis_client.Redis.from_url(redis_url)
        flusher.function_delete(FUNCTION)
        flusher.close()
        found = backend.lookup_many("m", keys, [partitioner.partition_of(key) for key in keys])
        assert [entry is not None for entry in found] == [True] * 10 + [False] * 10
        assert found[3] == backend.partitions[partitioner.partition_of("k3")].get("m", "k3")
    finally:
        backend.close()
        drop_namespace(redis_url, namespace)


def test_status_records_written_before_the_sweepers_indexes_are_indexed_on_open(
    coordinators: tuple[RedisBackend, RedisBackend], request: pytest.FixtureRequest
) -> None:
    """A namespace an earlier version wrote has status records but no `tu`/`tf` indexes: the
    first coordinator opening it builds them, so the sweeper still finds its undecided records
    and forgets its decided ones."""
    first, second = coordinators
    partition = first.partitions[0]
    partition.step(CreateStatus(b"old-pending", (0,), 10**13, 1))
    partition.step(CreateStatus(b"old-decided", (0,), 10**13, 1))
    partition.step(CasStatus(b"old-decided", PENDING, COMMITTED, 5))
    url: str = request.getfixturevalue(request.node.callspec.params["coordinators"])
    client = connect(url)
    try:
        # As an earlier version left them: records, no indexes, no mark that they were built.
        client.delete(partition.layout.undecided_statuses)
        client.delete(partition.layout.decided_statuses)
        client.hdel(partition.layout.meta, "status_index")
    finally:
        client.close()
    assert partition.undecided_statuses() == []
    second.open(ParticipantHooks(lambda m: None, lambda m, f: False, lambda m, c, i: b""))
    reopened = second.partitions[0]
    assert [view.txn_id for view in reopened.undecided_statuses()] == [b"old-pending"]
    assert [view.txn_id for view in reopened.decided_statuses(10, 10)] == [b"old-decided"]
    assert reopened.decided_statuses(4, 10) == []


def test_a_step_missing_a_key_it_touches_in_its_keys_is_refused_before_it_writes(
    coordinators: tuple[RedisBackend, RedisBackend],
) -> None:
    """Every key a step touches must be declared (so that Redis Cluster checks them all before
    the script runs while a slot migrates): a step whose KEYS lack one fails before its first
    write, on one Redis as on a cluster."""
    import redis

    first, _ = coordinators
    partition = first.partitions[1]
    layout = partition.layout
    applied = partition.step(ApplyOnePhase(b"", (), (put("k", 1),)))
    assert isinstance(applied, Applied)
    lsn = partition._client.hget(layout.meta, "lsn")
    keys = partition._writing(("m", "l", "o", "oq", "hx"), (), (put("k", 2),))
    keys.remove(layout.history("m", "k"))
    arguments = ["", 0, 0, 0, 0, *_write_arguments(put("k", 2))]
    with pytest.raises(redis.exceptions.ResponseError, match="undeclared"):
        partition._steps(keys, [layout.prefix, "apply", *arguments])
    assert partition._client.hget(layout.meta, "lsn") == lsn
    entry = partition.get("m", "k")
    assert entry is not None and orjson.loads(value_of(entry)) == 1


def _write_arguments(write: Write) -> list[object]:
    return [1, write.op.name, write.map, write.key, write.value, "", 0]


def test_the_steps_run_as_a_script_where_redis_has_no_functions(
    coordinators: tuple[RedisBackend, RedisBackend],
) -> None:
    """On a Redis without function libraries (before 7.0, or a service refusing FUNCTION) the
    same steps.lua runs as a script (EVALSHA), with the same strict key declaration."""
    import redis

    from grid.redis.library import StepsLibrary

    first, second = coordinators
    script = StepsLibrary(first._client, functions=False)
    assert not script.uses_functions
    for partition in first.partitions:
        partition._steps = script
    applied = first.partitions[1].step(ApplyOnePhase(b"s1", (), (put("k", 1),)))
    assert isinstance(applied, Applied)
    vote = first.partitions[1].step(Prepare(b"t1", (), (put("k", 2),), 10**13, 0))
    assert vote.yes
    first.partitions[1].step(PreCommit(b"t1"))
    # The other coordinator (functions) commits it: it learns the keys (redeclare).
    committed = second.partitions[1].step(Commit(b"t1"))
    assert isinstance(committed, Applied)
    entry = first.partitions[1].get("m", "k")
    assert entry is not None and orjson.loads(value_of(entry)) == 2
    layout = first.partitions[1].layout
    with pytest.raises(redis.exceptions.ResponseError, match="undeclared"):
        script([layout.meta], [layout.prefix, "read_outcome", "x"])


def test_a_one_phase_step_takes_its_numbers_release_along_on_one_redis_server(
    coordinators: tuple[RedisBackend, RedisBackend],
) -> None:
    """On one server a one-phase step and its number's release go in one round trip, the
    release behind the step; on a Redis Cluster (other nodes) the release stays its own call."""
    import redis as redis_client

    from grid.catalog import Catalog
    from grid.errors import StaleVersion
    from grid.redis.sequence import RELEASE

    backend, _ = coordinators
    sequence = backend.sequence
    if backend.name == "redis-cluster":
        assert sequence.release_command(1) is None
        return
    Catalog(backend.catalog_store).create("m", None, now_ms=0)
    partition = backend.partitions[0]
    # The steps and the release loaded, as an opened backend has them (a test before may have
    # flushed them).
    partition._steps.reload()
    flusher = redis_client.Redis.from_url(backend.config.url)
    flusher.script_load(RELEASE)
    number, deadline, _ = sequence.take_with_lower("first")
    command = sequence.release_command(number)
    assert command is not None
    write = (Write(Op.PUT, "m", "k", b'"one"'),)
    answered = partition.apply_then(
        ApplyOnePhase(b"first", (), write, number, 0, deadline), command
    )
    assert answered is not None
    reply, released = answered
    assert released and isinstance(reply, Applied) and reply.versions == (number,)
    assert sequence.read_version() == number, "the number was not released with the step"
    assert value_of(partition.get("m", "k") or b"") == b'"one"'
    # A restarted Redis forgot the steps: the step wrote nothing, and asks for a new number.
    flusher.function_flush()
    flusher.script_flush()
    flusher.close()
    second, deadline, _ = sequence.take_with_lower("second")
    again = (Write(Op.PUT, "m", "k", b'"two"'),)
    with pytest.raises(StaleVersion):
        partition.apply_then(
            ApplyOnePhase(b"second", (), again, second, 0, deadline),
            sequence.release_command(second) or [],
        )
    assert value_of(partition.get("m", "k") or b"") == b'"one"'
    sequence.release(second)
    third, deadline, _ = sequence.take_with_lower("third")
    answered = partition.apply_then(
        ApplyOnePhase(b"third", (), again, third, 0, deadline),
        sequence.release_command(third) or [],
    )
    assert answered == (Applied((third,)), True), "the release script was loaded again"
    assert value_of(partition.get("m", "k") or b"") == b'"two"'


def test_a_coordinator_refuses_calls_once_the_store_has_lost_its_catalog(redis_url: str) -> None:
    """A Redis restarted without persistence (here: the namespace's keys deleted) comes back
    with an older catalog than a running coordinator saw: it answers UNAVAILABLE saying the
    store lost acknowledged data, instead of NOT_FOUND for maps that exist and writes into a
    grid that forgot the earlier ones."""
    from grid.catalog import Catalog
    from grid.errors import Unavailable
    from grid.schema import parse_schema
    from tests.support.shared_store import drop_namespace

    namespace = f"lost-{uuid.uuid4().hex[:12]}"
    backend = RedisBackend(RedisBackendConfig(redis_url, namespace, PARTITIONS))
    try:
        catalog = Catalog(backend.catalog_store)
        catalog.create("accounts", parse_schema({"balance": "int"}), now_ms=1)
        catalog.create("ledger", None, now_ms=2)
        assert catalog.confirm() is False
        drop_namespace(redis_url, namespace)
        with pytest.raises(Unavailable, match=r"older than version 2 .* lost acknowledged data"):
            catalog.confirm()
        with pytest.raises(Unavailable, match="lost acknowledged data"):
            catalog.create("orders", None, now_ms=3)
        assert catalog.find("accounts") is not None  # what it knew stays, it is not served
    finally:
        backend.close()
        drop_namespace(redis_url, namespace)

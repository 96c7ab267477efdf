"""A Redis Cluster master killed during a workload: its replica takes over, nothing acknowledged
is lost (issue 12, "Failures of the store").

The cluster is the test's own (deploy/local/redis-cluster.sh with one replica per master and an
append-only file, ports 7310-7315, a 1 s cluster-node-timeout so a replica takes over quickly).
Redis replicates asynchronously, so Shoal waits for a replica (``WAIT 1``) after every change
before acknowledging it (grid/redis/replicas.py); the first test shows it does, the second kills
a master with SIGKILL under puts and bank transfers through ``shoal serve``. The last two move
slots: between writes, and during a workload as ``redis-cli --cluster reshard`` does (every key a
step touches is declared, so a step meets a migrating slot before it runs, never half-way).
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest
import redis
from redis.cluster import RedisCluster
from redis.crc import key_slot

from grid.errors import Unavailable
from grid.memory.records import Op
from grid.protocol import ApplyOnePhase, Write
from grid.redis.backend import RedisBackend, RedisBackendConfig
from shoal import Client, ConflictError, ShoalError
from tests.support.bank import (
    InsufficientFundsError,
    Transfers,
    account_key,
    balances,
    ledger_is_atomic,
    setup_bank,
    transfer,
    transfer_until,
)
from tests.support.external_servers import run_redis_cluster_script, run_redis_script
from tests.support.shared_store import coordinators, fresh_namespace

pytestmark = [pytest.mark.fault, pytest.mark.slow, pytest.mark.redis]

FIRST_PORT = 7310
ACCOUNTS = 20
NODE_ENV = {"REDIS_APPENDFSYNC": "everysec", "REDIS_CLUSTER_NODE_TIMEOUT": "1000"}
SHORT_LEASES = ["--txn-lease-ms", "2000", "--txn-sweep-interval-ms", "200"]


@dataclass
class Cluster:
    url: str
    cache_dir: Path

    def pid(self, port: int) -> int:
        return int((self.cache_dir / f"redis-{port}" / "redis.pid").read_text())

    def node(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, socket_timeout=5)

    def restart(self, port: int) -> None:
        environment = {**NODE_ENV, "SHOAL_CACHE_DIR": str(self.cache_dir)}
        run_redis_script("up", port, {**environment, "REDIS_CLUSTER_NODE": "yes"})

    def replica_of(self, master_port: int) -> int:
        """The port of the replica of the master on ``master_port``."""
        with self.node(master_port) as master:
            for replica in master.info("replication").values():
                if isinstance(replica, dict) and "port" in replica:
                    return int(replica["port"])
        raise AssertionError(f"the master on {master_port} has no replica")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cache_dir = tmp_path_factory.mktemp("redis-cluster")
    environment = {**NODE_ENV, "SHOAL_CACHE_DIR": str(cache_dir), "REDIS_CLUSTER_REPLICAS": "1"}
    run_redis_cluster_script("up", FIRST_PORT, environment)
    nodes = ",".join(f"127.0.0.1:{FIRST_PORT + offset}" for offset in range(3))
    try:
        yield Cluster(f"redis+cluster://{nodes}", cache_dir)
    finally:
        run_redis_cluster_script("down", FIRST_PORT, environment)


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _put(backend: RedisBackend, partition: int, key: str) -> None:
    write = Write(Op.PUT, "m", key, orjson.dumps({"k": key}))
    backend.partitions[partition].step(ApplyOnePhase(b"", (), (write,)))


def test_a_write_no_replica_confirms_is_not_acknowledged(cluster: Cluster) -> None:
    backend = RedisBackend(RedisBackendConfig(cluster.url, fresh_namespace("w"), 4))
    try:
        assert backend.replica_wait.replicas == 1, "the backend should wait for a replica"
        _put(backend, 0, "before")
        client = backend._client
        master = client.get_node_from_key(backend.partitions[0].layout.prefix)
        replica_pid = cluster.pid(cluster.replica_of(int(master.port)))
        os.kill(replica_pid, signal.SIGSTOP)
        try:
            with pytest.raises(Unavailable, match="replica"):
                _put(backend, 0, "unconfirmed")
        finally:
            os.kill(replica_pid, signal.SIGCONT)

        def confirmed_again() -> bool:
            try:
                _put(backend, 0, "after")
            except Unavailable:
                return False
            return True

        wait_until(confirmed_again, "the resumed replica to confirm writes again")
    finally:
        backend.close()


@dataclass
class Acknowledged(Transfers):
    puts: dict[str, int] = field(default_factory=dict)

    def counts(self) -> tuple[int, int]:
        with self.lock:
            return len(self.puts), len(self.acknowledged)


def put_until(target: str, stop: threading.Event, done: Acknowledged, prefix: str = "p") -> None:
    client = Client(target, timeout_s=10)
    try:
        index = 0
        while not stop.is_set():
            index += 1
            key = f"{prefix}{index}"
            try:
                client.put("puts", key, {"i": index})
            except ShoalError as error:
                # Not acknowledged (UNAVAILABLE while the master is down): may be there or not.
                done.failed_with(error)
                time.sleep(0.05)
                continue
            with done.lock:
                done.puts[key] = index
    finally:
        client.close()


def test_a_master_killed_during_a_workload_loses_nothing_acknowledged(
    cluster: Cluster, tmp_path: Path
) -> None:
    victim = FIRST_PORT + 1
    promoted = cluster.replica_of(victim)
    with coordinators(tmp_path, cluster.url, 1, extra_args=SHORT_LEASES) as servers:
        target = servers[0].target
        setup = Client(target)
        total = setup_bank(setup, "accounts", "ledger", accounts=ACCOUNTS)
        setup.create_map("puts")
        stop = threading.Event()
        done = Acknowledged()
        workers = [threading.Thread(target=put_until, args=(target, stop, done), daemon=True)]
        workers += [
            threading.Thread(
                target=transfer_until, args=(target, stop, seed, done, ACCOUNTS), daemon=True
            )
            for seed in range(2)
        ]
        for worker in workers:
            worker.start()
        try:
            wait_until(lambda: min(done.counts()) >= 10, "the workload to get going")
            os.kill(cluster.pid(victim), signal.SIGKILL)

            def replica_promoted() -> bool:
                with cluster.node(promoted) as node:
                    return bool(node.info("replication")["role"] == "master")

            wait_until(replica_promoted, "the replica to take over from the killed master")
            # The killed master comes back as the replica of the one that replaced it; until
            # then its slots answer UNAVAILABLE (no replica can confirm their writes).
            cluster.restart(victim)

            def victim_replicates() -> bool:
                with cluster.node(victim) as node:
                    replication = node.info("replication")
                return bool(
                    replication["role"] == "slave" and replication["master_link_status"] == "up"
                )

            wait_until(victim_replicates, "the restarted node to replicate its successor")
            puts, transfers = done.counts()
            wait_until(
                lambda: done.counts()[0] >= puts + 20 and done.counts()[1] >= transfers + 5,
                "the workload to continue after the failover",
            )
        finally:
            stop.set()
            for worker in workers:
                worker.join(60)
        assert_nothing_lost(target, done, total)


def assert_nothing_lost(target: str, done: Acknowledged, total: int) -> None:
    """Every acknowledged put and transfer is there, the total conserved, no transfer half-made."""
    checker = Client(target, timeout_s=15)
    try:
        found = checker.get_many("puts", list(done.puts))
        lost = [key for key, index in done.puts.items() if found.get(key) != {"i": index}]
        assert lost == [], f"{len(lost)} of {len(done.puts)} acknowledged puts lost"
        assert sum(balances(checker, "accounts", ACCOUNTS).values()) == total
        assert ledger_is_atomic(checker, "ledger") == []
        present = {key.rsplit(":", 1)[1] for key, _ in checker.scan("ledger")}
        missing = [transfer_id for transfer_id in done.acknowledged if transfer_id not in present]
        assert missing == [], f"{len(missing)} acknowledged transfers lost"
    finally:
        checker.close()


def move_slot(cluster: Cluster, slot: int) -> None:
    """Moves a slot to the next master as `redis-cli --cluster reshard` does, but all of its keys
    in one MIGRATE (between writes; reshard_slot moves them during writes)."""
    client = RedisCluster(host="127.0.0.1", port=FIRST_PORT)
    try:
        masters = sorted(int(node.port) for node in client.get_primaries())
        source = int(client.nodes_manager.slots_cache[slot][0].port)
    finally:
        client.close()
    target = masters[(masters.index(source) + 1) % len(masters)]
    with cluster.node(source) as old, cluster.node(target) as new:
        source_id = old.execute_command("CLUSTER", "MYID").decode()
        target_id = new.execute_command("CLUSTER", "MYID").decode()
        new.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
        old.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
        keys = old.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100_000)
        if keys:
            old.execute_command("MIGRATE", "127.0.0.1", target, "", 0, 10_000, "KEYS", *keys)
        assert new.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot) == len(keys)
    for port in masters:
        with cluster.node(port) as node:
            node.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)


def test_slots_moved_between_writes_are_followed(cluster: Cluster, tmp_path: Path) -> None:
    """A running coordinator follows its namespace's slots to new masters (MOVED), its writes
    still wait for the new masters' replicas, and nothing written before the move is lost."""
    with coordinators(tmp_path, cluster.url, 1, extra_args=SHORT_LEASES) as servers:
        server = servers[0]
        backend_url = server.extra_args[server.extra_args.index("--backend") + 1]
        namespace = backend_url.rsplit("/", 1)[1]
        client = Client(server.target, timeout_s=10)
        try:
            total = setup_bank(client, "accounts", "ledger", accounts=ACCOUNTS)
            client.create_map("puts")
            before = {f"b{index}": index for index in range(40)}
            client.put_many("puts", before)
            rng = random.Random(5)
            for _ in range(10):
                move_transfer(client, rng)
            tags = [f"{{{namespace}:p{index}}}" for index in range(8)]
            tags += [f"{{{namespace}:catalog}}", f"{{{namespace}:seq}}"]
            for slot in sorted({key_slot(tag.encode()) for tag in tags}):
                move_slot(cluster, slot)
            for index in range(40):
                client.put("puts", f"a{index}", index)
            moved = sum(move_transfer(client, rng) for _ in range(10))
            assert moved >= 1, "no transfer went through after the move"
            found = client.get_many("puts", [*before, *(f"a{index}" for index in range(40))])
            assert {key: found.get(key) for key in before} == before
            assert [found.get(f"a{index}") for index in range(40)] == list(range(40))
            assert sum(balances(client, "accounts", ACCOUNTS).values()) == total
            assert ledger_is_atomic(client, "ledger") == []
        finally:
            client.close()


def move_transfer(client: Client, rng: random.Random) -> int:
    """One transfer between two random accounts; 1 when it committed."""
    source, destination = rng.sample(range(ACCOUNTS), 2)
    try:
        client.transact(
            transfer,
            "accounts",
            "ledger",
            account_key(source),
            account_key(destination),
            rng.randint(1, 20),
        )
    except (InsufficientFundsError, ConflictError):
        return 0
    return 1


def slot_owners(cluster: Cluster) -> dict[int, tuple[int, str]]:
    """Slot -> (port, node id) of the master serving it, as CLUSTER SHARDS of a live master says."""
    for offset in range(6):
        try:
            with cluster.node(FIRST_PORT + offset) as node:
                if node.info("replication")["role"] != "master":
                    continue
                owners: dict[int, tuple[int, str]] = {}
                for start, end, *nodes in node.execute_command("CLUSTER", "SLOTS"):
                    port, node_id = int(nodes[0][1]), nodes[0][2]
                    node_text = node_id.decode() if isinstance(node_id, bytes) else node_id
                    for slot in range(int(start), int(end) + 1):
                        owners[slot] = (port, node_text)
                return owners
        except redis.ConnectionError:
            continue
    raise AssertionError("no live master answers CLUSTER SLOTS")


def reshard_slot(cluster: Cluster, slot: int, target: int, batch: int, pause_s: float) -> int:
    """Moves a slot to the master on ``target`` as `redis-cli --cluster reshard` does (IMPORTING,
    MIGRATING, MIGRATE a few keys at a time, then NODE on the target, the source and the other
    masters), slowly, while coordinators keep writing to it. Returns how many batches moved."""
    owners = slot_owners(cluster)
    source, source_id = owners[slot]
    masters = sorted({port for port, _ in owners.values()})
    with cluster.node(source) as old, cluster.node(target) as new:
        target_id = new.execute_command("CLUSTER", "MYID").decode()
        new.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
        old.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
        batches = 0
        while keys := old.execute_command("CLUSTER", "GETKEYSINSLOT", slot, batch):
            old.execute_command("MIGRATE", "127.0.0.1", target, "", 0, 10_000, "KEYS", *keys)
            batches += 1
            time.sleep(pause_s)
        new.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
        old.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
    for port in masters:
        if port not in (source, target):
            with cluster.node(port) as node:
                node.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
    return batches


def test_a_step_on_a_partition_split_by_a_migration_waits_and_never_half_applies(
    cluster: Cluster,
) -> None:
    """A partition's slot left half-migrated (its entries hash moved, the rest not): a put there
    does not run (Redis answers TRYAGAIN before the step, as every key it touches is declared),
    so after its retries it answers UNAVAILABLE and changed nothing; once the slot has moved the
    same put applies."""
    backend = RedisBackend(RedisBackendConfig(cluster.url, fresh_namespace("split"), 4))
    try:
        _put(backend, 0, "a")
        _put(backend, 0, "a")
        partition = backend.partitions[0]
        layout = partition.layout
        slot = key_slot(layout.prefix.encode())
        owners = slot_owners(cluster)
        source, source_id = owners[slot]
        masters = sorted({port for port, _ in owners.values()})
        target = masters[(masters.index(source) + 1) % len(masters)]
        lsn = backend._client.hget(layout.meta, "lsn")
        with cluster.node(source) as old, cluster.node(target) as new:
            target_id = new.execute_command("CLUSTER", "MYID").decode()
            new.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
            old.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
            old.execute_command(
                "MIGRATE", "127.0.0.1", target, "", 0, 10_000, "KEYS", layout.entries("m")
            )
            with pytest.raises(Unavailable, match="still migrating"):
                _put(backend, 0, "a")
            assert old.hget(layout.meta, "lsn") == lsn, "the step ran on the source"
            assert new.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot) == 1
            while keys := old.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100):
                old.execute_command("MIGRATE", "127.0.0.1", target, "", 0, 10_000, "KEYS", *keys)
            new.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
            old.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
        for port in masters:
            if port not in (source, target):
                with cluster.node(port) as node:
                    node.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
        _put(backend, 0, "a")
        assert int(backend._client.hget(layout.meta, "lsn")) == int(lsn) + 1
        assert backend.partitions[0].version_stats().kept >= 1
    finally:
        backend.close()


def redirections(cluster: Cluster) -> int:
    """How many TRYAGAIN and ASK replies the masters have sent (INFO errorstats)."""
    total = 0
    for port, _ in set(slot_owners(cluster).values()):
        with cluster.node(port) as node:
            stats = node.info("errorstats")
        total += sum(
            int(stats.get(f"errorstat_{kind}", {}).get("count", 0)) for kind in ("TRYAGAIN", "ASK")
        )
    return total


def halves(cluster: Cluster, namespace: str, partitions: int) -> list[str]:
    """Partitions whose entries and versions disagree (a step applied half-way)."""
    client = RedisCluster(host="127.0.0.1", port=FIRST_PORT)
    try:
        found = []
        for index in range(partitions):
            prefix = f"{{{namespace}:p{index}}}:"
            for map_name in ("accounts", "ledger", "puts"):
                entries = set(client.hkeys(f"{prefix}e:{map_name}"))
                versions = set(client.hkeys(f"{prefix}v:{map_name}"))
                if entries != versions:
                    found.append(f"p{index}/{map_name}: {len(entries ^ versions)} keys differ")
        return found
    finally:
        client.close()


def test_a_resharding_during_a_workload_loses_nothing_acknowledged(
    cluster: Cluster, tmp_path: Path
) -> None:
    """Transfers and puts through two coordinators while the slots of four partitions, the commit
    sequence and the catalog move to another master and back, a few keys per MIGRATE (as
    `redis-cli --cluster reshard`), twice:
    steps that meet a migrating slot are redirected or told to try again before they run
    (every key a step touches is declared), so none applies half-way and no client sees an
    internal error; every acknowledged transfer and put is there and the total is conserved."""
    with coordinators(tmp_path, cluster.url, 2, extra_args=SHORT_LEASES) as servers:
        backend_url = servers[0].extra_args[servers[0].extra_args.index("--backend") + 1]
        namespace = backend_url.rsplit("/", 1)[1]
        setup = Client(servers[0].target, timeout_s=15)
        total = setup_bank(setup, "accounts", "ledger", accounts=ACCOUNTS)
        setup.create_map("puts")
        setup.close()
        stop = threading.Event()
        done = Acknowledged()
        workers = [
            threading.Thread(
                target=put_until, args=(server.target, stop, done, f"s{n}-"), daemon=True
            )
            for n, server in enumerate(servers)
        ]
        workers += [
            threading.Thread(
                target=transfer_until,
                args=(servers[seed % 2].target, stop, seed, done, ACCOUNTS),
                daemon=True,
            )
            for seed in range(4)
        ]
        for worker in workers:
            worker.start()
        try:
            wait_until(lambda: min(done.counts()) >= 10, "the workload to get going")
            before = redirections(cluster)
            # Four partitions, and the commit sequence and catalog every commit reads.
            tags = [f"{{{namespace}:p{index}}}" for index in range(4)]
            tags += [f"{{{namespace}:seq}}", f"{{{namespace}:catalog}}"]
            slots = sorted({key_slot(tag.encode()) for tag in tags})
            homes = {slot: slot_owners(cluster)[slot][0] for slot in slots}
            masters = sorted({port for port, _ in slot_owners(cluster).values()})
            batches = 0
            for _ in range(2):
                for slot in slots:
                    away = masters[(masters.index(homes[slot]) + 1) % len(masters)]
                    batches += reshard_slot(cluster, slot, away, batch=2, pause_s=0.02)
                    batches += reshard_slot(cluster, slot, homes[slot], batch=2, pause_s=0.02)
            hit = redirections(cluster) - before
            puts, transfers = done.counts()
            wait_until(
                lambda: done.counts()[0] >= puts + 10 and done.counts()[1] >= transfers + 5,
                "the workload to continue after the resharding",
            )
        finally:
            stop.set()
            for worker in workers:
                worker.join(60)
        assert batches >= 4 * len(slots) * 2, f"the slots moved in only {batches} batches"
        assert hit > 0, "no step met a migrating slot (no TRYAGAIN or ASK): the test proves nothing"
        unexpected = {
            code: n for code, n in done.codes.items() if code not in ("UNAVAILABLE", "ABORTED")
        }
        assert unexpected == {}, f"clients saw {unexpected} during the resharding"
        assert halves(cluster, namespace, 8) == []
        assert_nothing_lost(servers[0].target, done, total)

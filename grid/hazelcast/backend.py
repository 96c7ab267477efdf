"""The Hazelcast backend: a namespace of partitions in a Hazelcast 5 cluster (one entry per
partition, changed by Shoal's entry processors), shared by every coordinator that opens it.

The members need Shoal's jar on their classpath with its serialization factory registered, and
the namespace's partitions and sequence maps in OBJECT in-memory format;
deploy/local/hazelcast.sh builds and configures both (docs/architecture/shared-stores.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hazelcast.client import HazelcastClient
from hazelcast.errors import HazelcastSerializationError, IllegalStateError

from grid.backend import ParticipantHooks
from grid.errors import FailedPrecondition, InvalidArgument, Unavailable
from grid.hazelcast.catalog_store import HazelcastCatalogStore, catalog_map_name
from grid.hazelcast.lost import INVOCATION_TIMEOUT_S
from grid.hazelcast.partition import HazelcastPartition
from grid.hazelcast.processors import FACTORY_ID
from grid.hazelcast.sequence import HazelcastCommitSequence, sequence_map_name

SCHEME = "hazelcast://"
CLUSTER_NAME_DEFAULT = "dev"


def parse_url(url: str) -> tuple[list[str], str]:
    """``hazelcast://host:port[,host:port...]/cluster-name``: the members to find the cluster
    from, and its name (Hazelcast's default, ``dev``, when none is given)."""
    if not url.startswith(SCHEME):
        raise InvalidArgument(f"a Hazelcast URL starts with {SCHEME}, got {url!r}", field="backend")
    members, _, cluster_name = url[len(SCHEME) :].partition("/")
    addresses = [member for member in members.split(",") if member]
    for address in addresses:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise InvalidArgument(
                f"a Hazelcast member is host:port, got {address!r} in {url!r}", field="backend"
            )
    if not addresses:
        raise InvalidArgument(f"no Hazelcast member in {url!r}", field="backend")
    return addresses, cluster_name.strip("/") or CLUSTER_NAME_DEFAULT


def connect(url: str, *, connect_timeout_s: float = 30.0) -> Any:
    """A client of the cluster a ``hazelcast://`` URL names; thread-safe, one per backend."""
    members, cluster_name = parse_url(url)
    try:
        return HazelcastClient(
            cluster_members=members,
            cluster_name=cluster_name,
            cluster_connect_timeout=connect_timeout_s,
            invocation_timeout=INVOCATION_TIMEOUT_S,
        )
    except IllegalStateError as error:
        # The client gives up with "Unable to connect to any cluster", which names neither the
        # members nor the cluster; `shoal serve` prints this in one line and exits 2.
        raise Unavailable(
            f"the Hazelcast cluster {cluster_name!r} cannot be reached at {','.join(members)} "
            f"within {connect_timeout_s:g} s ({error}; is a member running, and is the "
            "cluster's name right?)"
        ) from None


def missing_jar(error: HazelcastSerializationError, url: str) -> FailedPrecondition | None:
    """The error a member without Shoal's jar answers, said in terms of what to do; None for
    any other serialization error."""
    if f"No DataSerializerFactory registered for namespace: {FACTORY_ID}" not in str(error):
        return None
    members, cluster_name = parse_url(url)
    return FailedPrecondition(
        f"the Hazelcast cluster {cluster_name!r} at {','.join(members)} runs without Shoal's "
        "jar: add the jar deploy/local/hazelcast.sh builds (.cache/hazelcast/<version>/"
        "shoal-hazelcast-*.jar) to every member's classpath and register its serialization "
        f"factory {FACTORY_ID} (README, 'Hazelcast 5.x')"
    )


def partitions_map_name(namespace: str) -> str:
    return f"shoal.{namespace}.partitions"


@dataclass(frozen=True)
class HazelcastBackendConfig:
    # hazelcast://host:port/cluster-name
    url: str
    # Names every map of this grid: several grids (a sandbox, a test) share one cluster apart.
    namespace: str
    partitions: int
    # Lease of a commit number (by the member's clock) before another coordinator may presume
    # its holder dead.
    lease_ms: int = 10_000


class HazelcastBackend:
    """A ``grid.backend.Backend`` whose partitions and catalog live in Hazelcast."""

    name = "hazelcast"

    def __init__(self, config: HazelcastBackendConfig) -> None:
        self.config = config
        self._client: Any = connect(config.url)
        partitions_map = self._client.get_map(partitions_map_name(config.namespace))
        self._partitions = [
            HazelcastPartition(partitions_map, index) for index in range(config.partitions)
        ]
        self._catalog_store = HazelcastCatalogStore(self._client, config.namespace)
        self._sequence = HazelcastCommitSequence(
            self._client, config.namespace, lease_ms=config.lease_ms
        )
        try:
            # Every step is one of the jar's processors: a member without it is found here,
            # at start, rather than by the first call (the Java traceback of a bare member).
            self._sequence.time_ms()
        except HazelcastSerializationError as error:
            self._client.shutdown()
            refused = missing_jar(error, config.url)
            if refused is None:
                raise
            raise refused from None

    # Several coordinators share this backend: see grid.backend.SharedBackend.
    shared = True

    @property
    def sequence(self) -> HazelcastCommitSequence:
        return self._sequence

    def time_ms(self) -> int:
        return self._sequence.time_ms()

    @property
    def client(self) -> Any:
        return self._client

    @property
    def partitions(self) -> Sequence[HazelcastPartition]:
        return self._partitions

    @property
    def catalog_store(self) -> HazelcastCatalogStore:
        return self._catalog_store

    def lookup_many(
        self,
        map_name: str,
        keys: Sequence[str],
        partitions: Sequence[int],
        version: int | None = None,
    ) -> list[bytes | None]:
        """Committed entries of many keys (coordinator/keyvalue.py's get-many): one entry
        processor per partition reads its keys at one instant, at the read version when one is
        given, and all partitions' reads are sent before any answer is awaited."""
        by_partition: dict[int, list[int]] = {}
        for position, partition in enumerate(partitions):
            by_partition.setdefault(partition, []).append(position)
        sent = {
            partition: self._partitions[partition].lookup_sent(
                map_name, [keys[position] for position in positions], version
            )
            for partition, positions in by_partition.items()
        }
        found: list[bytes | None] = [None] * len(keys)
        for partition, positions in by_partition.items():
            answers = self._partitions[partition].lookup_answer(sent[partition], version)
            for position, entry in zip(positions, answers, strict=True):
                found[position] = entry
        return found

    def open(self, hooks: ParticipantHooks) -> None:
        # Steps with a Python hook (increments, appends, sketch adds) consult them.
        for partition in self._partitions:
            partition.hooks = hooks
        # The partition count is the namespace's, fixed by the first coordinator: a key's
        # partition must be the same for every coordinator.
        settings = self._client.get_map(catalog_map_name(self.config.namespace)).blocking()
        fixed = settings.put_if_absent("partitions", self.config.partitions)
        if fixed is not None and int(fixed) != self.config.partitions:
            raise FailedPrecondition(
                f"namespace '{self.config.namespace}' has {fixed} partitions, not "
                f"{self.config.partitions} (--partitions must match the coordinators already "
                "serving it)",
                field="partitions",
            )

    def close(self) -> None:
        self._client.shutdown()


def drop_namespace(client: Any, namespace: str) -> None:
    """Destroys every map of a namespace (tests, and removing a sandbox's grid)."""
    for name in (
        partitions_map_name(namespace),
        sequence_map_name(namespace),
        catalog_map_name(namespace),
    ):
        client.get_map(name).blocking().destroy()

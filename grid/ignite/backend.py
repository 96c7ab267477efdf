"""The Ignite backend: a namespace of partitions in an Apache Ignite 2.x cluster, reached
through the thin client (pyignite), shared by every coordinator that opens it.

The caches must be TRANSACTIONAL (deploy/local/ignite.sh makes every cache named ``shoal*`` so
with a cache template), and the cluster must speak thin-client protocol 1.6 or newer
(transactions; Ignite 2.17 speaks 1.7). pyignite's ``Client`` is not thread-safe: each thread
that uses the backend gets its own, closed with the backend.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pyignite import Client
from pyignite.exceptions import ReconnectError

from grid.backend import ParticipantHooks
from grid.entry import version_of
from grid.errors import FailedPrecondition, InvalidArgument, Unavailable
from grid.ignite.catalog_store import IgniteCatalogStore
from grid.ignite.lost import unavailable_when_lost
from grid.ignite.partition import IgnitePartition
from grid.ignite.records import (
    ENTRIES_CACHE_PREFIX,
    LEASES_CACHE,
    RECORDS_CACHE,
    entries_cache_name,
    partition_prefix,
)
from grid.ignite.scans import MapScans
from grid.ignite.sequence import IgniteCommitSequence

SCHEME = "ignite://"
# Ignite's own default transaction timeout in ignite.sh; a step is a few round trips.
TX_TIMEOUT_MS_DEFAULT = 10_000


def parse_url(url: str) -> list[tuple[str, int]]:
    """``ignite://host:port[,host:port...]``: thin-client addresses of the cluster's nodes."""
    if not url.startswith(SCHEME):
        raise InvalidArgument(f"an Ignite URL starts with {SCHEME}, got {url!r}", field="backend")
    nodes = []
    for address in url[len(SCHEME) :].strip("/").split(","):
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise InvalidArgument(
                f"an Ignite node is host:port, got {address!r} in {url!r}", field="backend"
            )
        nodes.append((host, int(port)))
    return nodes


def connect(url: str, *, timeout_s: float = 30.0) -> Any:
    nodes = parse_url(url)
    client = Client(timeout=timeout_s)
    try:
        client.connect(nodes)
    except ReconnectError as error:
        # pyignite says only "Can not connect." (and the caller's name for the call it was
        # making): name the nodes, as `shoal serve` prints this in one line.
        client.close()
        addresses = ",".join(f"{host}:{port}" for host, port in nodes)
        raise Unavailable(
            f"the Ignite cluster cannot be reached at {addresses} ({error}); is a node running, "
            "and is this its thin-client port?"
        ) from None
    return client


@dataclass(frozen=True)
class IgniteBackendConfig:
    # ignite://host:port
    url: str
    # Names every cache of this grid: several grids (a sandbox, a test) share one cluster apart.
    namespace: str
    partitions: int
    tx_timeout_ms: int = TX_TIMEOUT_MS_DEFAULT
    # Lease of a commit number (by the cluster's clock) before another coordinator may presume
    # its holder dead.
    lease_ms: int = 10_000


class IgniteBackend:
    """A ``grid.backend.Backend`` whose partitions and catalog live in Ignite caches."""

    name = "ignite"

    def __init__(self, config: IgniteBackendConfig) -> None:
        self.config = config
        self._local = threading.local()
        self._clients: list[Any] = []
        self._clients_lock = threading.Lock()
        self._partitions = [
            IgnitePartition(
                self.client,
                self.cache,
                self.scan_cache,
                config.namespace,
                index,
                config.tx_timeout_ms,
            )
            for index in range(config.partitions)
        ]
        self._catalog_store = IgniteCatalogStore(self.cache, config.namespace)
        self._sequence = self.commit_sequence(lease_ms=config.lease_ms)
        self.scans = MapScans(self.scan_cache, self._sequence.read_version, config.namespace)
        for partition in self._partitions:
            partition.scans = self.scans

    # Several coordinators share this backend: see grid.backend.SharedBackend.
    shared = True

    @property
    def sequence(self) -> IgniteCommitSequence:
        return self._sequence

    def time_ms(self) -> int:
        return self._sequence.time_ms()

    def client(self, role: str = "steps") -> Any:
        """This thread's client (pyignite's are not thread-safe), connected on first use.
        Scans take a client of their own (``role="scans"``): a scan on the connection of an
        open transaction hung until the transaction timed out."""
        client = getattr(self._local, role, None)
        if client is None:
            client = connect(self.config.url)
            setattr(self._local, role, client)
            setattr(self._local, role + "_caches", {})
            with self._clients_lock:
                self._clients.append(client)
        return client

    def cache(self, name: str, role: str = "steps") -> Any:
        """This thread's handle of a cache, created (TRANSACTIONAL, by the cluster's template
        for ``shoal*``) when missing; asked of the cluster once per thread."""
        client = self.client(role)
        caches: dict[str, Any] = getattr(self._local, role + "_caches")
        if name not in caches:
            caches[name] = client.get_or_create_cache(name)
        return caches[name]

    def scan_cache(self, name: str) -> Any:
        return self.cache(name, "scans")

    def commit_sequence(self, *, lease_ms: int = 10_000) -> IgniteCommitSequence:
        return IgniteCommitSequence(
            self.client, self.cache, self.config.namespace, lease_ms=lease_ms
        )

    def lookup_many(
        self,
        map_name: str,
        keys: Sequence[str],
        partitions: Sequence[int],
        version: int | None = None,
    ) -> list[bytes | None]:
        """Committed entries of many keys (coordinator/keyvalue.py's get-many) in one read of
        the map's entries cache, which holds every partition's; at a read version, the keys
        changed after it (or absent, maybe deleted since) are read again as of it, one
        transaction per partition that has any. An entry no newer than the read version is
        its state then: every commit numbered up to it has applied, and a later one gives the
        key a later version."""
        by_partition: dict[int, list[int]] = {}
        for position, partition in enumerate(partitions):
            by_partition.setdefault(partition, []).append(position)
        found: list[bytes | None] = [None] * len(keys)
        names = [
            partition_prefix(self.config.namespace, partition) + key
            for key, partition in zip(keys, partitions, strict=True)
        ]
        with unavailable_when_lost("a get-many"):
            stored = self.cache(entries_cache_name(map_name)).get_all(names)
        for position, name in enumerate(names):
            raw = stored.get(name)
            found[position] = None if raw is None else bytes(raw)
        if version is None:
            return found
        for partition, positions in by_partition.items():
            older = [
                position
                for position in positions
                if (entry := found[position]) is None or version_of(entry) > version
            ]
            if older:
                states = self._partitions[partition].get_many_at(
                    map_name, [keys[position] for position in older], version
                )
                for position, state in zip(older, states, strict=True):
                    found[position] = state
        return found

    @property
    def partitions(self) -> Sequence[IgnitePartition]:
        return self._partitions

    @property
    def catalog_store(self) -> IgniteCatalogStore:
        return self._catalog_store

    def open(self, hooks: ParticipantHooks) -> None:
        for partition in self._partitions:
            partition.hooks = hooks
        # The partition count is the namespace's, fixed by the first coordinator: a key's
        # partition must be the same for every coordinator.
        records = self.cache(RECORDS_CACHE)
        key = f"{self.config.namespace}|partitions"
        records.put_if_absent(key, self.config.partitions)
        fixed = int(records.get(key))
        if fixed != self.config.partitions:
            raise FailedPrecondition(
                f"namespace '{self.config.namespace}' has {fixed} partitions, not "
                f"{self.config.partitions} (--partitions must match the coordinators already "
                "serving it)",
                field="partitions",
            )

    def close(self) -> None:
        with self._clients_lock:
            clients, self._clients = self._clients, []
        for client in clients:
            client.close()
        self._local = threading.local()


def drop_namespace(client: Any, namespace: str) -> None:
    """Removes every record of a namespace (tests, and removing a sandbox's grid): a scan of
    the shared caches, as the caches are not the namespace's own."""
    prefix = f"{namespace}|"
    for name in client.get_cache_names():
        if name not in (RECORDS_CACHE, LEASES_CACHE) and not name.startswith(ENTRIES_CACHE_PREFIX):
            continue
        cache = client.get_cache(name)
        with cache.scan(page_size=1000) as cursor:
            keys = [key for key, _ in cursor if isinstance(key, str) and key.startswith(prefix)]
        if keys:
            cache.remove_keys(keys)

"""A lost Hazelcast or Ignite cluster is answered as Unavailable (UNAVAILABLE to clients), never
as an internal error, and a connection that comes back serves again.

Ignite is reached through a TCP forwarder the test stops and starts (the thin client talks to
the address it was given); the Hazelcast client learns its members' own addresses and would go
round a forwarder, so its loss is its client stopping under the backend.
"""

from __future__ import annotations

import socket
import threading
import uuid

import orjson
import pytest

from grid.backend import ParticipantHooks
from grid.errors import Unavailable
from grid.hazelcast.backend import HazelcastBackend, HazelcastBackendConfig
from grid.ignite.backend import IgniteBackend, IgniteBackendConfig, connect, drop_namespace
from grid.memory.records import Op
from grid.protocol import Applied, ApplyOnePhase, Write
from tests.support.external_servers import HAZELCAST_CLUSTER_NAME

pytestmark = pytest.mark.integration

HOOKS = ParticipantHooks(lambda name: None, lambda name, field: False, lambda *args: b"")


def put(key: str) -> ApplyOnePhase:
    return ApplyOnePhase(b"", (), (Write(Op.PUT, "m", key, orjson.dumps({"k": key})),))


class Forwarder:
    """Forwards one local port to an upstream address until stopped (every connection cut)."""

    def __init__(self, upstream: tuple[str, int], port: int = 0) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", port))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            with self.lock:
                self.sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self) -> None:
        # shutdown first: on Linux a close alone leaves a thread blocked in accept() accepting.
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()
        with self.lock:
            for end in self.sockets:
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                end.close()
            self.sockets.clear()


@pytest.mark.ignite
# pyignite drops a broken connection's socket without closing it (the garbage collector does,
# with a ResourceWarning): its code, not ours.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_lost_ignite_cluster_is_unavailable_and_a_returning_one_serves(
    ignite_address: str,
) -> None:
    host, _, port = ignite_address.rpartition(":")
    forwarder = Forwarder((host, int(port)))
    namespace = f"lost-{uuid.uuid4().hex[:10]}"
    backend = IgniteBackend(
        IgniteBackendConfig(f"ignite://127.0.0.1:{forwarder.port}", namespace, 2)
    )
    try:
        backend.open(HOOKS)
        assert isinstance(backend.partitions[0].step(put("a")), Applied)
        forwarder.stop()
        with pytest.raises(Unavailable):
            backend.partitions[0].step(put("b"))
        with pytest.raises(Unavailable):
            backend.partitions[0].get("m", "a")
        forwarder = Forwarder((host, int(port)), forwarder.port)
        # pyignite reconnects on a later call; the first may still find the old socket gone.
        for _ in range(5):
            try:
                assert isinstance(backend.partitions[0].step(put("c")), Applied)
                break
            except Unavailable:
                continue
        assert backend.partitions[0].get("m", "c") is not None
    finally:
        forwarder.stop()
        backend.close()
        client = connect(f"ignite://{ignite_address}")
        try:
            drop_namespace(client, namespace)
        finally:
            client.close()


@pytest.mark.hazelcast
def test_a_hazelcast_client_that_lost_its_cluster_is_unavailable(hazelcast_address: str) -> None:
    url = f"hazelcast://{hazelcast_address}/{HAZELCAST_CLUSTER_NAME}"
    backend = HazelcastBackend(HazelcastBackendConfig(url, f"lost-{uuid.uuid4().hex[:10]}", 2))
    backend.open(HOOKS)
    assert isinstance(backend.partitions[0].step(put("a")), Applied)
    backend.client.shutdown()
    with pytest.raises(Unavailable):
        backend.partitions[0].step(put("b"))
    with pytest.raises(Unavailable):
        backend.sequence.read_version()
    with pytest.raises(Unavailable):
        backend.catalog_store.load_versioned()

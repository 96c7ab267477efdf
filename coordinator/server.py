"""The gRPC server: serves the node's services, health checking and reflection.

grpc.aio on an event loop thread, with the synchronous servicers run in thread pools
by `coordinator.dispatch`. grpcio's threaded server held a worker thread for each open
stream until its reader took every message, so 16 unread streams (the 16 workers)
stopped every call, health checks included. Measured against the threaded server on
the same code (farm-bench, paired runs on the 2-core machine, see docs/architecture/serving.md):
Gets, answered on the loop, take 1.0 to 1.2 times as long; Puts, one thread hop each
way, 1.3 times.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import os
import random
import signal
import socket
import ssl
import sys
import threading
import time
from collections.abc import Coroutine, Sequence
from concurrent import futures
from dataclasses import dataclass
from types import FrameType
from typing import Any, TypeVar

import grpc
import grpc.aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc

from coordinator import config as config_module
from coordinator.backends import redacted as redacted_backend
from coordinator.config import ConfigError, ServerConfig
from coordinator.dispatch import Lanes, OnLoop, Registrar, Workers
from coordinator.exposition import MetricsEndpoint
from coordinator.memory import MemoryKeeper
from coordinator.metrics import Registry
from coordinator.node import Node
from coordinator.observability import tracing
from coordinator.observability.rpc import RpcTelemetry
from coordinator.observability.wiring import NodeInstrumentation, instrument
from coordinator.operators import sandbox_channel
from coordinator.operators.backfills import BackfillManager
from coordinator.operators.lifeline import watch_lifeline
from coordinator.operators.operations import Operations
from coordinator.operators.reconcile import Reconciler
from coordinator.operators.replay_forwarding import SandboxReplays
from coordinator.operators.replays import ReplayManager
from coordinator.operators.sandbox_diff import Diffs
from coordinator.operators.sandbox_replays import replays_in
from coordinator.operators.sandbox_seed import Production
from coordinator.operators.sandboxes import ChildShape, Sandboxes, SandboxLimits
from coordinator.pipelines.host import PipelineHost
from coordinator.procedures.runner import Procedures, procedures_for
from coordinator.security import setup as security_setup
from coordinator.security import transport
from coordinator.security.permissions import AUTH_MAP
from coordinator.security.rules import RULES
from coordinator.security.setup import Security, auth_enabled
from coordinator.services.admin import AdminService
from coordinator.services.auth import AuthService
from coordinator.services.backfills import BackfillsService
from coordinator.services.data import DataService
from coordinator.services.guard import tolerate_undecodable
from coordinator.services.pipelines import PipelinesService
from coordinator.services.procedures import ProcedureAdminService, ProceduresService
from coordinator.services.query import QueryService
from coordinator.services.reconciliation import ReconciliationService
from coordinator.services.replays import ReplaysService
from coordinator.services.sandboxes import SandboxesService
from coordinator.services.sketches import SketchesService
from coordinator.services.transactions import TransactionsService
from coordinator.telemetry import configure_logging
from coordinator.transactions.faults import FaultPoints
from grid.errors import GridError
from shoal.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    auth_pb2,
    auth_pb2_grpc,
    data_pb2,
    data_pb2_grpc,
    pipelines_pb2,
    pipelines_pb2_grpc,
    procedures_pb2,
    procedures_pb2_grpc,
    query_pb2,
    query_pb2_grpc,
    replay_pb2,
    replay_pb2_grpc,
    sandbox_pb2,
    sandbox_pb2_grpc,
    sketches_pb2,
    sketches_pb2_grpc,
    transactions_pb2,
    transactions_pb2_grpc,
)

log = logging.getLogger(__name__)
Result = TypeVar("Result")
DEFAULT_METRICS_PORT = 9464

SERVICE_NAMES = (
    data_pb2.DESCRIPTOR.services_by_name["Data"].full_name,
    admin_pb2.DESCRIPTOR.services_by_name["Admin"].full_name,
    transactions_pb2.DESCRIPTOR.services_by_name["Transactions"].full_name,
    query_pb2.DESCRIPTOR.services_by_name["Query"].full_name,
    sketches_pb2.DESCRIPTOR.services_by_name["Sketches"].full_name,
    pipelines_pb2.DESCRIPTOR.services_by_name["Pipelines"].full_name,
    replay_pb2.DESCRIPTOR.services_by_name["Replays"].full_name,
    procedures_pb2.DESCRIPTOR.services_by_name["Procedures"].full_name,
    procedures_pb2.DESCRIPTOR.services_by_name["ProcedureAdmin"].full_name,
    replay_pb2.DESCRIPTOR.services_by_name["Backfills"].full_name,
    replay_pb2.DESCRIPTOR.services_by_name["Reconciliation"].full_name,
    auth_pb2.DESCRIPTOR.services_by_name["Auth"].full_name,
    sandbox_pb2.DESCRIPTOR.services_by_name["Sandboxes"].full_name,
)


@dataclass
class RunningServer:
    node: Node
    server: grpc.aio.Server
    health: health.aio.HealthServicer
    port: int
    loop: asyncio.AbstractEventLoop
    loop_thread: threading.Thread
    pools: list[Workers | futures.ThreadPoolExecutor]
    memory: MemoryKeeper
    metrics_endpoint: MetricsEndpoint | None = None
    pipelines: PipelineHost | None = None
    replays: ReplayManager | None = None
    procedures: Procedures | None = None
    instrumentation: NodeInstrumentation | None = None
    security: Security | None = None
    operators: Operators | None = None

    def on_loop(self, coroutine: Coroutine[Any, Any, Result]) -> Result:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def stop(self, grace_s: float) -> bool:
        """Stops taking calls, lets calls in flight finish, then closes the grid. Returns
        False when a handler thread was still busy after `grace_s` more: the process
        must then end without waiting for it (see `serve`)."""
        self.on_loop(_set_health(self.health, health_pb2.HealthCheckResponse.NOT_SERVING))
        if self.replays is not None:
            # Before the grid closes; a replay stopped here resumes at the next start.
            self.replays.stop(grace_s)
        if self.pipelines is not None:
            # Before the grid closes: each pipeline finishes the batch it is committing.
            self.pipelines.stop(grace_s)
        self.on_loop(self.server.stop(grace_s))
        if self.operators is not None:
            # Each sandbox stops cleanly; the next start brings them back.
            self.operators.sandboxes.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.loop_thread.join()
        for pool in self.pools:
            pool.shutdown(wait=False, cancel_futures=True)
        finished = _join_threads(
            [thread for pool in self.pools for thread in _threads_of(pool)], grace_s
        )
        self.loop.close()
        if self.metrics_endpoint is not None:
            self.metrics_endpoint.stop()
        if self.instrumentation is not None:
            self.instrumentation.close()
        self.memory.stop()
        if self.procedures is not None:
            self.procedures.close()
        if self.security is not None:
            self.security.close()
        self.node.close()
        return finished


@dataclass
class Operators:
    """Operators' tools of this coordinator (see coordinator.operators)."""

    operations: Operations
    sandboxes: Sandboxes
    diffs: Diffs

    @classmethod
    def for_node(cls, node: Node, config: ServerConfig) -> Operators:
        operations = Operations(node.clock)
        production = Production(
            catalog=node.catalog,
            partitions=node.backend.partitions,
            partitioner=node.partitioner,
            reading=node.transactions.reading,
            now_ms=node.clock.now_ms,
        )
        sandboxes = Sandboxes(
            config.data_dir / "sandboxes",
            production,
            child_shape(config),
            SandboxLimits(
                sandboxes_max=config.sandboxes_max,
                memory_bytes_max=config.sandbox_memory_bytes_max,
                ttl_max_ms=config.sandbox_ttl_max_ms,
            ),
            clock=node.clock,
            operations=operations,
            memory_estimate=lambda names: sum(node.map_stats(name).memory_bytes for name in names),
            replays_of=replays_in,
        )
        diffs = Diffs(
            node.catalog,
            node.sql.snapshots,
            node.transactions.read_version,
            sandboxes.channel,
            operations,
            memory_bytes_max=config.sql_memory_bytes_max,
        )
        return cls(operations, sandboxes, diffs)


def child_shape(config: ServerConfig) -> ChildShape:
    """How sandboxes are started: production's host, partitions and fsync, and its TLS
    and auth, so a sandbox is no easier to reach than production."""
    extra: list[str] = []
    system_maps: tuple[str, ...] = ()
    if config.tls_cert:
        extra += ["--tls-cert", config.tls_cert, "--tls-key", config.tls_key]
    if config.tls_client_ca:
        extra += ["--tls-client-ca", config.tls_client_ca]
    if config.insecure_listen:
        extra += ["--insecure-listen", "true"]
    if auth_enabled(config):
        extra += ["--auth", "on"]
        system_maps = (AUTH_MAP,)
    return ChildShape(
        host=config.host,
        partitions=config.partitions,
        fsync=config.fsync,
        extra_args=tuple(extra),
        system_maps=system_maps,
    )


def _threads_of(pool: Workers | futures.ThreadPoolExecutor) -> list[threading.Thread]:
    if isinstance(pool, Workers):
        return pool.threads()
    return list(pool._threads)


def _join_threads(threads: list[threading.Thread], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    for thread in threads:
        thread.join(max(deadline - time.monotonic(), 0.0))
    return not any(thread.is_alive() for thread in threads)


async def _set_health(
    servicer: health.aio.HealthServicer, status: health_pb2.HealthCheckResponse.ServingStatus
) -> None:
    for name in ("", *SERVICE_NAMES):
        await servicer.set(name, status)


def bind_failure(host: str, port: int) -> str | None:
    """Why the address cannot be bound, in the operating system's words, or None.

    grpcio only logs a C-level line and says that binding failed, so the same bind is
    tried first with a plain socket: a port in use is then reported in one line before
    the data directory is opened."""
    try:
        family, kind, protocol, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM
        )[0]
        with socket.socket(family, kind, protocol) as probe:
            # As gRPC does: a port whose old connections linger in TIME_WAIT is free.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            return f"port {port} is already in use (is another shoal serve running?)"
        return error.strerror or str(error)
    return None


def metrics_endpoint_on(
    host: str,
    port: int,
    registry: Registry,
    *,
    ssl_context: ssl.SSLContext | None,
    optional: bool,
) -> MetricsEndpoint | None:
    """Binds the metrics endpoint, or None when an optional port was taken meanwhile.

    The port was probed free at start, but coordinators started together (two on one
    machine, as the README's shared-backend example does) race for the default port
    between the probe and this bind: the loser serves without metrics, as if the probe
    had found the port taken, rather than exit on a bare `[Errno 98]`."""
    try:
        return MetricsEndpoint(host, port, registry, ssl_context=ssl_context)
    except OSError as error:
        if error.errno != errno.EADDRINUSE:
            raise ConfigError(
                f"cannot serve metrics on {host}:{port}: {error.strerror or error}"
            ) from error
        refused = f"port {port} is already in use (is another shoal serve running?)"
        if not optional:
            raise ConfigError(f"cannot serve metrics on {host}:{port}: {refused}") from error
        log.warning(
            "metrics not served: %s:%d: %s (choose another with --metrics-port)",
            host,
            port,
            refused,
        )
        return None


def start(config: ServerConfig, *, faults: FaultPoints | None = None) -> RunningServer:
    transport.check_listening(config)
    transport_files = transport.load_files(config)
    refused = bind_failure(config.host, config.port)
    if refused is not None:
        raise ConfigError(f"cannot listen on {config.address}: {refused}")
    metrics_port = config.metrics_port
    if metrics_port:
        refused = bind_failure(config.metrics_host, metrics_port)
        if refused is not None and metrics_port == DEFAULT_METRICS_PORT:
            # The default port: a second server on one machine still starts.
            log.warning(
                "metrics not served: %s:%d: %s (choose another with --metrics-port)",
                config.metrics_host,
                metrics_port,
                refused,
            )
            metrics_port = 0
        elif refused is not None:
            raise ConfigError(
                f"cannot serve metrics on {config.metrics_host}:{metrics_port}: {refused}"
            )
    observed = bool(
        metrics_port or config.metrics_otlp_interval_s or config.trace_exporter != "none"
    )
    if observed:
        tracing.configure(config.trace_exporter, config.trace_sample_ratio, config.otlp_endpoint)
    # A seed makes the server's random draws (reservoir samples) replay; 0 draws one.
    rng = random.Random(config.seed or None)
    node = Node(config, rng=rng, faults=faults or FaultPoints.from_environment())
    try:
        security = security_setup.build(config, node)
    except BaseException:
        node.close()
        raise
    try:
        pipelines = PipelineHost.from_config(node, config)
        if pipelines is not None:
            security.check_pipelines(pipeline.spec for pipeline in pipelines.registry)
        procedures = procedures_for(node)
    except BaseException:
        security.close()
        node.close()
        raise
    replays = ReplayManager(node, kafka=config.kafka)
    operators = Operators.for_node(node, config)
    loop = asyncio.new_event_loop()
    loop_thread = threading.Thread(target=loop.run_forever, name="grpc-loop", daemon=True)
    loop_thread.start()
    lanes = Lanes.from_config(config, sql_connections=node.sql.config.connections)
    # Metrics and spans cost nothing when neither is wanted (the benchmark's baseline).
    instrumentation = instrument(node) if observed else None
    rpc = RpcTelemetry(node.metrics) if observed else None
    try:
        server, health_servicer, port = asyncio.run_coroutine_threadsafe(
            _serve_on_loop(
                config,
                node,
                pipelines,
                replays,
                procedures,
                lanes,
                transport_files,
                security,
                operators,
                rpc,
            ),
            loop,
        ).result()
    except BaseException:
        loop.call_soon_threadsafe(loop.stop)
        loop_thread.join()
        loop.close()
        lanes.shutdown()
        procedures.close()
        if instrumentation is not None:
            instrumentation.close()
        security.close()
        node.close()
        raise
    node.start_background()
    security.start()
    operators.sandboxes.start()
    memory = MemoryKeeper(node.metrics, trim_growth_bytes=config.memory_trim_growth_bytes)
    memory.start()
    node.metrics.before_scrape(memory.sample)
    metrics_endpoint = None
    if metrics_port:
        metrics_endpoint = metrics_endpoint_on(
            config.metrics_host,
            metrics_port,
            node.metrics,
            ssl_context=transport.metrics_ssl_context(config),
            optional=metrics_port == DEFAULT_METRICS_PORT,
        )
    if metrics_endpoint is not None:
        metrics_endpoint.start()
    if instrumentation is not None:
        instrumentation.watch_replays(replays)
        instrumentation.watch_sandboxes(operators.sandboxes)
        if config.metrics_otlp_interval_s:
            instrumentation.push_over_otlp(config.metrics_otlp_interval_s, config.otlp_endpoint)
    if pipelines is not None:
        pipelines.start()
    replays.start()
    return RunningServer(
        node=node,
        server=server,
        health=health_servicer,
        port=port,
        loop=loop,
        loop_thread=loop_thread,
        pools=lanes.pools(),
        memory=memory,
        metrics_endpoint=metrics_endpoint,
        pipelines=pipelines,
        replays=replays,
        procedures=procedures,
        instrumentation=instrumentation,
        security=security,
        operators=operators,
    )


async def _serve_on_loop(
    config: ServerConfig,
    node: Node,
    pipelines: PipelineHost | None,
    replays: ReplayManager,
    procedures: Procedures,
    lanes: Lanes,
    transport_files: transport.TransportFiles | None,
    security: Security,
    operators: Operators,
    rpc: RpcTelemetry | None = None,
) -> tuple[grpc.aio.Server, health.aio.HealthServicer, int]:
    """Builds and starts the grpc.aio server; runs on the event loop's thread."""
    limits = config.limits
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", limits.message_bytes_max),
            ("grpc.max_send_message_length", limits.message_bytes_max),
            ("grpc.so_reuseport", 0),
        ],
    )
    gate = security.gate
    registrar = Registrar(
        server,
        lanes.lane_of,
        wrap=tolerate_undecodable,
        observe=None if rpc is None else rpc.wrap,
        gate=None if gate is None else gate.admit,
        recheck=None if gate is None else gate.still_valid,
    )
    data_pb2_grpc.add_DataServicer_to_server(DataService(node.keyvalue), registrar)
    admin_pb2_grpc.add_AdminServicer_to_server(AdminService(node, security), registrar)
    transactions_pb2_grpc.add_TransactionsServicer_to_server(TransactionsService(node), registrar)
    query_pb2_grpc.add_QueryServicer_to_server(QueryService(node.sql), registrar)
    sketches_pb2_grpc.add_SketchesServicer_to_server(
        SketchesService(node.sketches, security), registrar
    )
    pipelines_pb2_grpc.add_PipelinesServicer_to_server(
        PipelinesService(pipelines, security), registrar
    )
    procedures_pb2_grpc.add_ProceduresServicer_to_server(
        ProceduresService(procedures, security), registrar
    )
    procedures_pb2_grpc.add_ProcedureAdminServicer_to_server(
        ProcedureAdminService(procedures, security), registrar
    )
    replay_pb2_grpc.add_ReplaysServicer_to_server(
        ReplaysService(
            replays,
            pipelines,
            config.kafka,
            SandboxReplays(operators.sandboxes.channel, operators.sandboxes.note_replay),
        ),
        registrar,
    )
    sandbox_pb2_grpc.add_SandboxesServicer_to_server(
        SandboxesService(
            operators.sandboxes,
            operators.operations,
            node.catalog,
            node.sql.snapshots,
            node.transactions.read_version,
            operators.diffs.start,
        ),
        registrar,
    )
    replay_pb2_grpc.add_BackfillsServicer_to_server(
        BackfillsService(BackfillManager(node)), registrar
    )
    replay_pb2_grpc.add_ReconciliationServicer_to_server(
        ReconciliationService(Reconciler(node, pipelines, config.kafka)), registrar
    )
    auth_pb2_grpc.add_AuthServicer_to_server(AuthService(security), registrar)
    unruled = sorted(set(registrar.methods) - set(RULES))
    if unruled and gate is not None:
        # Refused to everyone while auth is on; coordinator/security/rules.py is the table.
        log.warning("methods without a permission rule (refused): %s", ", ".join(unruled))
    # Health and reflection answer on the event loop itself: no admission, no thread,
    # so they answer whatever the pools are doing.
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, OnLoop(server))
    # Registered through OnLoop too, so that a request that does not parse is refused
    # with one log line, not answered UNKNOWN with a traceback.
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(
        reflection.aio.ReflectionServicer(
            (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME)
        ),
        OnLoop(server),
    )
    try:
        if transport_files is None:
            port = server.add_insecure_port(config.address)
        else:
            port = server.add_secure_port(
                config.address, transport.server_credentials(transport_files)
            )
    except RuntimeError:
        port = 0
    if port == 0:
        refused = bind_failure(config.host, config.port) or "gRPC could not bind it"
        raise ConfigError(f"cannot listen on {config.address}: {refused}")
    # A sandbox also serves its supervising production on a private Unix socket.
    control = sandbox_channel.listening_target()
    if control is not None and server.add_insecure_port(control) == 0:
        raise ConfigError(f"cannot listen on {control}")
    await server.start()
    await _set_health(health_servicer, health_pb2.HealthCheckResponse.SERVING)
    return server, health_servicer, port


def serve(config: ServerConfig) -> int:
    """Runs until SIGTERM or SIGINT, then shuts down gracefully."""
    configure_logging(config.log_level, config.log_format)
    try:
        running = start(config)
    except (GridError, ConfigError, OSError, ValueError) as error:
        print(f"shoal serve: {error}", file=sys.stderr)
        return 2
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("received %s: shutting down", signal.Signals(signum).name)
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    # A sandbox stops with the coordinator that supervises it, however that one ended.
    watch_lifeline(stopping.set)
    recovery = getattr(running.node.backend, "recovery", None)
    log.info(
        "shoal serving on %s:%d (backend %s, %d partitions, fsync %s, data %s, %s entries "
        "recovered in %.2fs)",
        config.host,
        running.port,
        redacted_backend(config.backend),
        config.partitions,
        config.fsync,
        config.data_dir,
        recovery.entries if recovery else 0,
        recovery.seconds if recovery else 0.0,
    )
    # Tests and scripts read this line to learn the port when they asked for port 0.
    print(f"SHOAL_READY {config.host}:{running.port}", flush=True)
    stopping.wait()
    finished = running.stop(config.grace_s)
    if not finished:
        log.warning("a call was still running after the grace period; exiting without it")
    log.info("shoal stopped")
    logging.shutdown()
    if not finished:
        # The interpreter would wait for the busy thread at exit (thread pools join
        # their threads), possibly for ever; the grid is closed and the log flushed.
        sys.stdout.flush()
        os._exit(0)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="shoal serve", description="Run a Shoal coordinator.")
    config_module.add_arguments(parser)
    arguments = parser.parse_args(argv)
    try:
        config = config_module.load(vars(arguments))
    except ConfigError as error:
        print(f"shoal serve: {error}", file=sys.stderr)
        return 2
    return serve(config)


if __name__ == "__main__":
    sys.exit(main())

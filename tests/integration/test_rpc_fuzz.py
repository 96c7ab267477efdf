"""Every RPC method of every service, sent random and mutated messages over raw gRPC: no
answer is INTERNAL (or UNKNOWN, or a hang), and health stays SERVING after each method.

The methods come from the service descriptors of every `shoal.v1` module (and health
checking and reflection), so a new method is fuzzed without editing this test; a method
that streams requests gets one to three bodies. Seeded: the seed is
printed, and SHOAL_FUZZ_SEED=<seed> replays a run; SHOAL_FUZZ_CALLS sets the calls per
method (40 by default; the whole run takes seconds).
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import random
from collections.abc import Iterator

import grpc
import pytest
from google.protobuf.descriptor import MethodDescriptor
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2

import shoal.v1
from shoal import Client
from tests.support.fuzz_messages import MessageFuzzer
from tests.support.server_process import ServerProcess

pytestmark = pytest.mark.integration

CALL_TIMEOUT_S = 20
# Answers that mean the server failed rather than refused the input.
FAILURES = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}
# The client's own deadline passing means the server hung; a DEADLINE_EXCEEDED the server
# sends (a statement past the time limit the request asked for) is an answer.
CLIENT_DEADLINE_DETAILS = "Deadline Exceeded"
# Health.Watch never ends by design.
SKIPPED = {"grpc.health.v1.Health.Watch"}
REQUESTS_PER_STREAM_MAX = 3
STREAMED_REPLIES_MAX = 50
NAMES = ["fuzz_free", "fuzz_accounts", "fuzz_hll", "fuzz_missing", "alice", "bob", "k1"]


def methods() -> list[MethodDescriptor]:
    found: list[MethodDescriptor] = []
    modules = [
        importlib.import_module(f"shoal.v1.{info.name}")
        for info in pkgutil.iter_modules(shoal.v1.__path__)
        if info.name.endswith("_pb2")
    ]
    for module in [*modules, health_pb2, reflection_pb2]:
        for service in module.DESCRIPTOR.services_by_name.values():
            found.extend(method for method in service.methods if method.full_name not in SKIPPED)
    return sorted(found, key=lambda method: method.full_name)


@pytest.fixture
def fuzzed_server(fresh_server: ServerProcess) -> Iterator[ServerProcess]:
    fresh_server.start()
    with Client(fresh_server.target) as client:
        client.create_map("fuzz_free")
        client.put_many("fuzz_free", {"alice": {"n": 1}, "bob": [1, 2], "k1": "text"})
        client.create_map(
            "fuzz_accounts",
            schema={"owner": "string", "balance": {"type": "int", "min": 0}, "at": "timestamp"},
        )
        client.put("fuzz_accounts", "alice", {"owner": "Alice", "balance": 5})
        client.sketches.create("fuzz_hll", kind="hll", lg_k=10)
        client.sketches.add("fuzz_hll", "k1", ["a", "b"])
    yield fresh_server


def call_once(channel: grpc.Channel, method: MethodDescriptor, bodies: list[bytes]) -> None:
    path = f"/{method.containing_service.full_name}/{method.name}"
    if method.client_streaming:
        stream = channel.stream_stream(path)(iter(bodies), timeout=CALL_TIMEOUT_S)
        try:
            for count, _ in enumerate(stream):
                if count >= STREAMED_REPLIES_MAX:
                    break
        finally:
            stream.cancel()
        return
    body = bodies[0]
    if method.server_streaming:
        stream = channel.unary_stream(path)(body, timeout=CALL_TIMEOUT_S)
        try:
            for count, _ in enumerate(stream):
                if count >= STREAMED_REPLIES_MAX:
                    break
        finally:
            stream.cancel()
    else:
        channel.unary_unary(path)(body, timeout=CALL_TIMEOUT_S)


def assert_serving(channel: grpc.Channel, context: str) -> None:
    reply = health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(), timeout=CALL_TIMEOUT_S
    )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING, context


def test_every_rpc_survives_random_and_mutated_messages(fuzzed_server: ServerProcess) -> None:
    seed = int(os.environ.get("SHOAL_FUZZ_SEED") or random.SystemRandom().randrange(2**32))
    calls = int(os.environ.get("SHOAL_FUZZ_CALLS", "40"))
    print(f"fuzz seed {seed} (replay with SHOAL_FUZZ_SEED={seed})")
    rng = random.Random(seed)
    fuzzer = MessageFuzzer(rng, NAMES)
    covered = methods()
    assert len(covered) > 30, [method.full_name for method in covered]
    failures: list[str] = []
    with grpc.insecure_channel(fuzzed_server.target) as channel:
        for method in covered:
            for attempt in range(calls):
                count = rng.randint(1, REQUESTS_PER_STREAM_MAX) if method.client_streaming else 1
                bodies = [fuzzer.body(method.input_type) for _ in range(count)]
                body = b"|".join(bodies)
                try:
                    call_once(channel, method, bodies)
                except grpc.RpcError as error:
                    hung = (
                        error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
                        and error.details() == CLIENT_DEADLINE_DETAILS
                    )
                    if error.code() in FAILURES or hung:
                        failures.append(
                            f"{method.full_name} #{attempt}: {error.code().name} "
                            f"{error.details()!r} for body {body[:200]!r}"
                        )
            assert_serving(channel, f"after {method.full_name} (seed {seed})")
    log = fuzzed_server.log_tail(lines=100_000)
    tracebacks = log.count("Traceback")
    # Bad input is the client's fault: it is logged at INFO, never as a server ERROR.
    errors = [line for line in log.splitlines() if " ERROR " in line]
    assert failures == [], f"seed {seed}: {len(failures)} failures, first: {failures[:5]}"
    assert tracebacks == 0, (
        f"seed {seed}: {tracebacks} tracebacks in the server log, the first:\n"
        f"{log[log.find('Traceback') :][:4000]}"
    )
    assert errors == [], f"seed {seed}: {len(errors)} ERROR lines, first: {errors[:3]}"

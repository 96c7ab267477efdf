"""Procedures run in-process over a real node: one transaction per call, retried on conflict
by the coordinator, and every way a call can fail mapped to its status."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest

from coordinator.config import load
from coordinator.node import Node
from coordinator.procedures.runner import (
    ProcedureConfig,
    ProcedureFailed,
    Procedures,
    ProcedureTimedOut,
)
from coordinator.procedures.transaction import GridAccess
from grid.errors import (
    Conflict,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
)
from shoal.procedures import ProcedureSpec, procedure


@procedure(name="transfer")
def transfer(tx: Any, src: str, dst: str, amount: int) -> int:
    """Moves amount between two accounts."""
    source = tx.get("accounts", src)
    target = tx.get("accounts", dst)
    if source["balance"] < amount:
        raise ValueError(f"{src} holds less than {amount}")
    tx.put("accounts", src, {"balance": source["balance"] - amount})
    tx.put("accounts", dst, {"balance": target["balance"] + amount})
    return int(source["balance"] - amount)


def spec_of(function: Any) -> ProcedureSpec:
    spec: ProcedureSpec = function.__shoal_procedure__
    return spec


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    config = replace(load(environment={}), data_dir=tmp_path, partitions=4, fsync="off")
    opened = Node(config)
    opened.create_map("accounts")
    yield opened
    opened.close()


def procedures_of(node: Node, *functions: Any, **config: Any) -> Procedures:
    return Procedures(
        {spec_of(function).name: spec_of(function) for function in functions},
        GridAccess(
            catalog=node.catalog,
            planner=node.planner,
            partitions=node.backend.partitions,
            partition_of=node.partitioner.partition_of,
            limits=node.limits,
        ),
        node.transactions,
        config=ProcedureConfig(**config),
        clock=node.clock,
    )


def value(node: Node, key: str) -> Any:
    entry = node.keyvalue.get("accounts", key)
    assert entry is not None
    return orjson.loads(entry[:-8])


def args(*values: Any) -> bytes:
    return orjson.dumps(list(values))


def test_a_call_commits_its_writes_and_answers_its_result(node: Node) -> None:
    node.keyvalue.put("accounts", "alice", b'{"balance": 100}')
    node.keyvalue.put("accounts", "bob", b'{"balance": 5}')
    procedures = procedures_of(node, transfer)
    try:
        result = procedures.call("transfer", args("alice", "bob", 30))
    finally:
        procedures.close()
    assert orjson.loads(result.result_json) == 70
    assert result.attempts == 1
    assert result.version > 0
    assert value(node, "alice") == {"balance": 70}
    assert value(node, "bob") == {"balance": 35}


def test_reads_see_the_procedures_own_writes(node: Node) -> None:
    @procedure(name="read_back")
    def read_back(tx: Any, key: str) -> Any:
        seen = [tx.get("accounts", key)]
        tx.put("accounts", key, {"balance": 1})
        tx.increment("accounts", key, "balance", 2)
        seen.append(tx.get("accounts", key))
        tx.delete("accounts", key)
        seen.append(tx.exists("accounts", key))
        return seen

    procedures = procedures_of(node, read_back)
    try:
        result = procedures.call("read_back", args("carol"))
    finally:
        procedures.close()
    assert orjson.loads(result.result_json) == [None, {"balance": 3}, False]
    assert node.keyvalue.get("accounts", "carol") is None


def test_two_concurrent_calls_on_one_key_both_commit_by_retrying_on_the_server(
    node: Node,
) -> None:
    node.keyvalue.put("accounts", "counter", b'{"n": 0}')
    both_read = threading.Barrier(2, timeout=30)
    lock = threading.Lock()
    attempts = {"started": 0}

    @procedure(name="bump")
    def bump(tx: Any, key: str) -> int:
        current = tx.get("accounts", key)["n"]
        with lock:
            attempts["started"] += 1
            first_two = attempts["started"] <= 2
        if first_two:
            # Both first attempts read the same version before either writes: one of
            # them must conflict and run again, on the server.
            both_read.wait()
        tx.put("accounts", key, {"n": current + 1})
        return int(current + 1)

    procedures = procedures_of(node, bump)
    results: list[Any] = []
    errors: list[BaseException] = []

    def call() -> None:
        try:
            results.append(procedures.call("bump", args("counter")))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=call) for _ in range(2)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        procedures.close()
    assert errors == []
    assert sorted(orjson.loads(result.result_json) for result in results) == [1, 2]
    assert sorted(result.attempts for result in results) == [1, 2]
    assert value(node, "counter") == {"n": 2}
    assert procedures.statuses()[0].counters["retries"] == 1


def test_an_exception_aborts_the_call_and_names_its_type(node: Node) -> None:
    node.keyvalue.put("accounts", "alice", b'{"balance": 10}')
    node.keyvalue.put("accounts", "bob", b'{"balance": 0}')
    procedures = procedures_of(node, transfer)
    try:
        with pytest.raises(ProcedureFailed) as raised:
            procedures.call("transfer", args("alice", "bob", 11))
    finally:
        procedures.close()
    assert raised.value.status == "FAILED_PRECONDITION"
    assert raised.value.rule == "ValueError"
    assert raised.value.message == (
        "procedure 'transfer' raised ValueError: alice holds less than 11"
    )
    assert value(node, "alice") == {"balance": 10}
    assert procedures.statuses()[0].counters["failed"] == 1


def test_writes_before_an_exception_are_not_committed(node: Node) -> None:
    @procedure(name="half")
    def half(tx: Any) -> None:
        tx.put("accounts", "written", {"balance": 1})
        raise KeyError("missing")

    procedures = procedures_of(node, half)
    try:
        with pytest.raises(ProcedureFailed, match="raised KeyError: 'missing'"):
            procedures.call("half")
    finally:
        procedures.close()
    assert node.keyvalue.get("accounts", "written") is None


def test_an_unknown_name_is_not_found(node: Node) -> None:
    procedures = procedures_of(node, transfer)
    try:
        with pytest.raises(NotFound, match="no procedure named 'nope'") as raised:
            procedures.call("nope")
    finally:
        procedures.close()
    assert raised.value.field == "name"


@pytest.mark.parametrize(
    ("args_json", "kwargs_json", "field", "message"),
    [
        (b"[1, 2", b"", "args", "not valid JSON"),
        (b'{"src": "a"}', b"", "args", "must be a JSON array"),
        (b"", b"[1]", "kwargs", "must be a JSON object"),
        (b'["a", "b"]', b"", "args", "missing a required argument: 'amount'"),
        (b'["a", "b", 1, 2]', b"", "args", "too many positional arguments"),
        (b'["a", "b"]', b'{"amount": 1, "fee": 2}', "args", "unexpected keyword argument 'fee'"),
    ],
)
def test_bad_arguments_are_invalid_and_run_nothing(
    node: Node, args_json: bytes, kwargs_json: bytes, field: str, message: str
) -> None:
    procedures = procedures_of(node, transfer)
    try:
        with pytest.raises(InvalidArgument, match=message) as raised:
            procedures.call("transfer", args_json, kwargs_json)
    finally:
        procedures.close()
    assert raised.value.field == field


def test_keyword_arguments_bind_like_python(node: Node) -> None:
    node.keyvalue.put("accounts", "alice", b'{"balance": 10}')
    node.keyvalue.put("accounts", "bob", b'{"balance": 0}')
    procedures = procedures_of(node, transfer)
    try:
        result = procedures.call(
            "transfer", args("alice"), orjson.dumps({"dst": "bob", "amount": 4})
        )
    finally:
        procedures.close()
    assert orjson.loads(result.result_json) == 6


def test_a_procedure_past_its_time_limit_is_interrupted_and_commits_nothing(node: Node) -> None:
    @procedure(name="spin")
    def spin(tx: Any) -> None:
        tx.put("accounts", "spun", {"balance": 1})
        while True:
            try:
                pass
            except Exception:
                # The interruption is not an Exception: this cannot swallow it.
                continue

    procedures = procedures_of(node, spin, timeout_ms=200)
    try:
        with pytest.raises(ProcedureTimedOut, match="time limit of 200 ms") as raised:
            procedures.call("spin")
    finally:
        procedures.close()
    assert raised.value.status == "DEADLINE_EXCEEDED"
    assert node.keyvalue.get("accounts", "spun") is None
    assert procedures.statuses()[0].counters["timed_out"] == 1


def test_a_procedure_that_swallows_its_interruption_still_fails(node: Node) -> None:
    @procedure(name="stubborn")
    def stubborn(tx: Any) -> None:
        swallowed = False
        while not swallowed:
            try:
                while True:
                    pass
            except BaseException:
                swallowed = True
        tx.put("accounts", "stubborn", {"balance": 1})

    procedures = procedures_of(node, stubborn, timeout_ms=200)
    try:
        with pytest.raises(ProcedureTimedOut):
            procedures.call("stubborn")
    finally:
        procedures.close()
    assert node.keyvalue.get("accounts", "stubborn") is None


@pytest.mark.parametrize("reach", ["file", "socket", "process"])
def test_io_outside_tx_is_refused(node: Node, tmp_path: Path, reach: str) -> None:
    @procedure(name="reach_out")
    def reach_out(tx: Any) -> None:
        tx.put("accounts", "outside", {"balance": 1})
        if reach == "file":
            open(tmp_path / "leak.txt", "w").close()
        elif reach == "socket":
            import socket

            socket.create_connection(("127.0.0.1", 9))
        else:
            import subprocess

            subprocess.run(["true"], check=False)

    procedures = procedures_of(node, reach_out)
    try:
        with pytest.raises(ProcedureFailed, match="may not do I/O outside tx"):
            procedures.call("reach_out")
    finally:
        procedures.close()
    assert node.keyvalue.get("accounts", "outside") is None
    assert not (tmp_path / "leak.txt").exists()
    # The coordinator's own threads are not affected by the refusal.
    (tmp_path / "after.txt").write_text("ok")


def test_conflicts_past_the_attempts_are_aborted(node: Node) -> None:
    @procedure(name="always_conflicts")
    def always_conflicts(tx: Any) -> None:
        raise Conflict("made up")

    procedures = procedures_of(node, always_conflicts, attempts_max=3)
    try:
        with pytest.raises(Conflict):
            procedures.call("always_conflicts")
    finally:
        procedures.close()
    counters = procedures.statuses()[0].counters
    assert counters["conflicted"] == 1
    assert counters["retries"] == 0


def test_a_result_that_is_not_json_fails_the_call_and_commits_nothing(node: Node) -> None:
    @procedure(name="odd_result")
    def odd_result(tx: Any) -> object:
        tx.put("accounts", "odd", {"balance": 1})
        return object()

    procedures = procedures_of(node, odd_result)
    try:
        with pytest.raises(ProcedureFailed, match="cannot be sent as JSON"):
            procedures.call("odd_result")
    finally:
        procedures.close()
    assert node.keyvalue.get("accounts", "odd") is None


def test_a_read_only_call_commits_nothing_and_reads_one_version(node: Node) -> None:
    node.keyvalue.put("accounts", "alice", b'{"balance": 10}')

    @procedure(name="look")
    def look(tx: Any) -> Any:
        return [tx.get("accounts", "alice"), tx.get_many("accounts", ["alice", "nobody"])]

    procedures = procedures_of(node, look)
    try:
        result = procedures.call("look")
    finally:
        procedures.close()
    assert orjson.loads(result.result_json) == [{"balance": 10}, {"alice": {"balance": 10}}]
    assert result.version == 0


def test_a_procedure_that_keeps_swallowing_its_interruption_is_interrupted_again(
    node: Node,
) -> None:
    @procedure(name="relentless")
    def relentless(tx: Any) -> None:
        # Before each loop a fresh interruption is needed: one alone would leave the
        # second loop spinning forever, holding the thread.
        for _ in range(3):
            try:
                while True:
                    pass
            except BaseException:
                pass
        tx.put("accounts", "relentless", {"balance": 1})

    procedures = procedures_of(node, relentless, timeout_ms=100)
    outcome: list[BaseException] = []

    def call() -> None:
        try:
            procedures.call("relentless")
        except BaseException as error:
            outcome.append(error)

    caller = threading.Thread(target=call, daemon=True)
    try:
        caller.start()
        caller.join(60)  # a guard against hanging the run, not a timing
        assert not caller.is_alive(), "the procedure's thread was never freed"
    finally:
        procedures.close()
    assert len(outcome) == 1 and isinstance(outcome[0], ProcedureTimedOut)
    assert node.keyvalue.get("accounts", "relentless") is None


def test_a_tx_kept_past_its_call_refuses_to_read_or_write(node: Node) -> None:
    kept: list[Any] = []

    @procedure(name="keep_tx")
    def keep_tx(tx: Any) -> None:
        kept.append(tx)

    procedures = procedures_of(node, keep_tx)
    try:
        procedures.call("keep_tx")
    finally:
        procedures.close()
    with pytest.raises(FailedPrecondition, match="has ended") as refused:
        kept[0].put("accounts", "late", {"balance": 1})
    assert refused.value.field == "tx"
    with pytest.raises(FailedPrecondition, match="has ended"):
        kept[0].get("accounts", "late")
    assert node.keyvalue.get("accounts", "late") is None


def test_a_failing_procedure_is_authorized_for_what_it_read_before_its_message_returns(
    node: Node,
) -> None:
    node.create_map("secrets")
    node.keyvalue.put("secrets", "s", b'{"pin": 1234}')

    @procedure(name="leaky")
    def leaky(tx: Any) -> None:
        raise ValueError(f"pin is {tx.get('secrets', 's')['pin']}")

    seen: list[set[str]] = []

    def authorize(reads: Any, writes: Any) -> None:
        maps = {read.map for read in reads}
        seen.append(maps)
        if "secrets" in maps:
            raise PermissionDenied("lacks permission 'read' on map 'secrets'")

    procedures = procedures_of(node, leaky)
    try:
        with pytest.raises(PermissionDenied) as denied:
            procedures.call("leaky", authorize=authorize)
    finally:
        procedures.close()
    assert "1234" not in str(denied.value)
    assert seen == [{"secrets"}]


def test_a_result_too_large_to_send_is_refused_before_anything_commits(tmp_path: Path) -> None:
    config = replace(
        load(environment={"SHOAL_MESSAGE_BYTES_MAX": str(256 * 1024)}),
        data_dir=tmp_path,
        partitions=4,
        fsync="off",
    )
    small = Node(config)
    try:
        small.create_map("accounts")

        @procedure(name="huge")
        def huge(tx: Any, size: int) -> str:
            tx.put("accounts", "huge", {"balance": size})
            return "x" * size

        procedures = procedures_of(small, huge)
        try:
            assert len(orjson.loads(procedures.call("huge", args(1000)).result_json)) == 1000
            with pytest.raises(ResourceExhausted, match="more than a reply carries") as refused:
                procedures.call("huge", args(256 * 1024))
        finally:
            procedures.close()
        assert refused.value.field == "result"
        assert value(small, "huge") == {"balance": 1000}  # the first call's only
        counters = procedures.statuses()[0].counters
        assert counters["committed"] == 1 and counters["failed"] == 1
    finally:
        small.close()


def test_a_procedure_that_swallows_the_stop_raised_by_a_tx_call_is_interrupted_again(
    node: Node,
) -> None:
    @procedure(name="tx_then_spin")
    def tx_then_spin(tx: Any) -> None:
        try:
            while True:
                # Past the limit, a tx call raises the stop itself, in the coordinator's
                # code: the watchdog then saw no procedure code to interrupt.
                tx.get("accounts", "spun")
        except BaseException:
            pass
        while True:
            pass

    procedures = procedures_of(node, tx_then_spin, timeout_ms=100)
    outcome: list[BaseException] = []

    def call() -> None:
        try:
            procedures.call("tx_then_spin")
        except BaseException as error:
            outcome.append(error)

    caller = threading.Thread(target=call, daemon=True)
    try:
        caller.start()
        caller.join(60)  # a guard against hanging the run, not a timing
        assert not caller.is_alive(), "the procedure's thread was never freed"
    finally:
        procedures.close()
    assert len(outcome) == 1 and isinstance(outcome[0], ProcedureTimedOut)

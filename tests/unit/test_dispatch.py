"""The serving plumbing without a server: admission counts, worker hand-off, stream closing."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import pytest

from coordinator.dispatch import Admission, CallContext, Workers, close_when_done


def test_admission_refuses_past_its_limit_and_counts_leaving() -> None:
    admission = Admission(2, "concurrent_calls_max")
    assert admission.enter() and admission.enter()
    assert not admission.enter()
    admission.leave()
    assert admission.enter()


def test_workers_answer_results_and_errors_on_the_loop() -> None:
    workers = Workers(2, "test")
    seen_threads: list[str] = []

    def behavior(request: Any, call: Any) -> Any:
        seen_threads.append(threading.current_thread().name)
        if request == "fail":
            raise ValueError("refused")
        return request * 2

    async def run() -> tuple[Any, BaseException | None]:
        call: Any = None
        answer = await workers.run(behavior, 21, call)
        try:
            await workers.run(behavior, "fail", call)
        except ValueError as error:
            return answer, error
        return answer, None

    try:
        answer, error = asyncio.run(run())
    finally:
        workers.shutdown()
    assert answer == 42
    assert isinstance(error, ValueError)
    assert all(name.startswith("test_") for name in seen_threads)


def test_a_stream_is_closed_only_after_its_running_step() -> None:
    closed = threading.Event()
    release = threading.Event()

    def generator() -> Iterator[int]:
        try:
            yield 1
            release.wait(10)
            yield 2
        finally:
            closed.set()

    stream = generator()
    with futures.ThreadPoolExecutor(1) as steps, futures.ThreadPoolExecutor(1) as closer:
        assert steps.submit(next, stream).result() == 1
        running = steps.submit(next, stream)
        close_when_done(closer, running, stream)
        assert not closed.is_set()
        release.set()
        assert running.result(10) == 2
        assert closed.wait(10)


class FakeAioContext:
    def __init__(self) -> None:
        self.done_callbacks: list[Any] = []

    def add_done_callback(self, callback: Any) -> None:
        self.done_callbacks.append(callback)

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return (("shoal-trace-id", "abc"),)

    def time_remaining(self) -> float | None:
        return None


@pytest.mark.parametrize("watch", [True, False])
def test_end_callbacks_run_once_when_the_call_ends(watch: bool) -> None:
    aio = FakeAioContext()
    call = CallContext(aio, watch=watch)  # type: ignore[arg-type]
    ended: list[str] = []
    assert call.add_callback(lambda: ended.append("ended"))
    assert call.is_active()
    if watch:
        aio.done_callbacks[0](None)
    else:
        call.finish()
    call.finish()
    assert ended == ["ended"]
    # Read when the call began: still there after it ended.
    assert call.invocation_metadata() == (("shoal-trace-id", "abc"),)
    assert not call.is_active()
    assert not call.add_callback(lambda: ended.append("late"))

"""Runs a node's pipelines: one asyncio event loop thread for every consumer loop.

The gRPC server is threaded; its calls reach the pipelines through `PipelineHost`,
which runs each command as a coroutine on the loop and waits for the answer.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from coordinator.clock import Clock, SystemClock
from coordinator.config import ServerConfig
from coordinator.node import Node
from coordinator.pipelines.consumer import (
    KafkaSettings,
    PartitionLag,
    PipelineRunner,
    PipelineStatus,
)
from coordinator.pipelines.discovery import PipelineLoadError, load_definitions
from coordinator.pipelines.offsets import SYSTEM_MAPS
from coordinator.pipelines.registry import Pipeline, PipelineRegistry, resolve
from grid.errors import NotFound, Unavailable

log = logging.getLogger(__name__)

Result = TypeVar("Result")
COMMAND_TIMEOUT_S = 30.0


def _tracer() -> trace.Tracer:
    """The batch spans' tracer: from the process's SDK tracer provider when one is set
    (an exporter configured by telemetry), else from a provider of the pipelines' own, so
    spans are still real spans (with ids, children of the records' trace context)."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
    return provider.get_tracer("shoal.pipelines")


class PipelineHost:
    def __init__(
        self,
        node: Node,
        pipelines: list[Pipeline],
        kafka: KafkaSettings,
        *,
        tracer: trace.Tracer | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.node = node
        self.registry = PipelineRegistry(pipelines)
        self.kafka = kafka
        self.tracer = tracer or _tracer()
        self.clock = clock or SystemClock()
        self.rng = rng or random.Random()
        self.owner = f"{node.node_id}/{os.getpid()}/{os.urandom(4).hex()}"
        self.runners: dict[str, PipelineRunner] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._stopped = False
        now_ms = self.clock.now_ms()
        for name in SYSTEM_MAPS:
            node.catalog.create_system(name, now_ms=now_ms)

    @staticmethod
    def from_config(node: Node, config: ServerConfig) -> PipelineHost | None:
        """The host of the pipelines `--pipelines` names, or None when it names none.

        Raises PipelineLoadError for a module that does not load or declares nonsense.
        """
        sources = config.pipelines
        if not sources:
            return None
        kafka = config.kafka
        if not kafka:
            raise PipelineLoadError("--pipelines needs --kafka (the Kafka bootstrap servers)")
        definitions = load_definitions(sources)
        if not definitions.pipelines:
            raise PipelineLoadError(f"no @pipeline functions found in {sources}")
        pipelines = resolve(definitions, node.catalog)
        settings = KafkaSettings(
            bootstrap=kafka,
            session_timeout_ms=config.kafka_session_timeout_ms,
            client_id=f"shoal-{node.node_id}",
        )
        return PipelineHost(node, pipelines, settings)

    # Life cycle --------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run_loop, name="shoal-pipelines", daemon=True)
        self._thread.start()
        self._started.wait()
        for pipeline in self.registry:
            log.info(
                "pipeline %s: %s -> %s (group %s, %s)",
                pipeline.name,
                ",".join(pipeline.spec.topics),
                pipeline.spec.module,
                pipeline.spec.group,
                pipeline.spec.mode,
            )

    def _run_loop(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._start_runners())
            self._started.set()
            loop.run_forever()
        finally:
            self._started.set()
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

    async def _start_runners(self) -> None:
        for pipeline in self.registry:
            runner = PipelineRunner(
                pipeline,
                self.node,
                self.kafka,
                owner=self.owner,
                tracer=self.tracer,
                clock=self.clock,
                rng=self.rng,
            )
            self.runners[pipeline.name] = runner
            runner.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stops every pipeline (each finishes the batch it is committing), then the loop."""
        if self._stopped or self._loop is None:
            return
        self._stopped = True
        loop = self._loop
        future = asyncio.run_coroutine_threadsafe(self._stop_runners(), loop)
        try:
            future.result(timeout_s)
        except Exception:
            log.exception("stopping the pipelines failed")
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout_s)

    async def _stop_runners(self) -> None:
        await asyncio.gather(
            *(runner.stop() for runner in self.runners.values()), return_exceptions=True
        )

    # Commands from other threads ---------------------------------------------------

    def _run(self, coroutine: Coroutine[Any, Any, Result]) -> Result:
        loop = self._loop
        if loop is None or self._stopped:
            coroutine.close()
            raise Unavailable("the pipelines are not running")
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(COMMAND_TIMEOUT_S)

    def _runner(self, name: str) -> PipelineRunner:
        self.registry.get(name)
        runner = self.runners.get(name)
        if runner is None:
            raise NotFound(f"no pipeline named '{name}'", field="name")
        return runner

    def statuses(self) -> list[PipelineStatus]:
        return [
            self.runners[name].status() for name in self.registry.names() if name in self.runners
        ]

    def status(self, name: str) -> PipelineStatus:
        return self._runner(name).status()

    def pause(self, name: str) -> PipelineStatus:
        runner = self._runner(name)
        self._run(runner.pause())
        return runner.status()

    def resume(self, name: str) -> PipelineStatus:
        runner = self._runner(name)
        self._run(runner.resume())
        return runner.status()

    def lag(self, name: str = "") -> list[PartitionLag]:
        runners = [self._runner(name)] if name else [self.runners[n] for n in self.registry.names()]
        lags: list[PartitionLag] = []
        for runner in runners:
            try:
                lags.extend(self._run(runner.lag()))
            except (NotFound, Unavailable):
                raise
            except Exception as error:
                # Kafka is out of reach or the consumer is still starting: ask again later.
                raise Unavailable(
                    f"lag of pipeline '{runner.pipeline.name}' is unknown for now: {error}"
                ) from None
        return lags

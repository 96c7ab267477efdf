"""A TCP proxy in front of a store (Redis) that tests can shut, open, or make lose a reply.

`shut()` drops every connection and refuses new ones (the store is unreachable); `open()`
lets them through again; `lose_next_reply()` closes every connection when the store next
answers, instead of passing the answer on: the command ran in the store, the caller never
heard (a reply lost in the network).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading


class TcpGate:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self.replies_lost = 0
        self._open = threading.Event()
        self._open.set()
        self._lose = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.base_events.Server | None = None

    def start(self) -> TcpGate:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(10)
        return self

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self._open.is_set():
            writer.close()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, upstream_writer))
        await asyncio.gather(
            self._pump(reader, upstream_writer, from_store=False),
            self._pump(upstream_reader, writer, from_store=True),
            return_exceptions=True,
        )

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, from_store: bool
    ) -> None:
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                if from_store and self._lose.is_set():
                    self._lose.clear()
                    self.replies_lost += 1
                    self._close_all()
                    return
                writer.write(data)
                await writer.drain()
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    def _close_all(self) -> None:
        for writer in list(self._writers):
            with contextlib.suppress(Exception):
                writer.close()
        self._writers.clear()

    def shut(self) -> None:
        self._open.clear()
        self._loop.call_soon_threadsafe(self._close_all)

    def open(self) -> None:
        self._open.set()

    def lose_next_reply(self) -> None:
        self._lose.set()

    def stop(self) -> None:
        self._open.clear()

        async def shutdown() -> None:
            self._close_all()
            if self._server is not None:
                self._server.close()
                await self._server.wait_closed()
            tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

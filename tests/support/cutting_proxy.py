"""A TCP proxy that can cut a connection the moment the server answers a call.

Tests arm it and send a call through it: the proxy reads the server's HTTP/2 frames
and, at the first HEADERS frame of a stream (the start of a gRPC reply, which a
unary call sends once the handler has finished), closes every connection instead of
passing it on. The call has happened on the server; the client sees UNAVAILABLE.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

FRAME_HEADER_BYTES = 9
HEADERS_FRAME = 0x1


class CuttingProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self.cuts = 0
        self._armed = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.base_events.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._writers: set[asyncio.StreamWriter] = set()

    def start(self) -> CuttingProxy:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._listen(), self._loop)
        future.result(10)
        return self

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def arm(self) -> None:
        """The next bytes the server sends to any client close every connection instead."""
        self._armed.set()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                "127.0.0.1", self.upstream_port
            )
        except OSError:
            writer.close()
            return
        self._writers.update((writer, upstream_writer))
        await asyncio.gather(
            self._pump(reader, upstream_writer, from_server=False),
            self._pump(upstream_reader, writer, from_server=True),
            return_exceptions=True,
        )

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, from_server: bool
    ) -> None:
        pending = b""
        try:
            while data := await reader.read(65536):
                if not from_server:
                    writer.write(data)
                    await writer.drain()
                    continue
                pending += data
                # Forward whole frames only, so a reply is recognised before any of it leaves.
                while len(pending) >= FRAME_HEADER_BYTES:
                    length = int.from_bytes(pending[:3], "big")
                    frame_type = pending[3]
                    stream = int.from_bytes(pending[5:9], "big") & 0x7FFFFFFF
                    end = FRAME_HEADER_BYTES + length
                    if len(pending) < end:
                        break
                    if self._armed.is_set() and frame_type == HEADERS_FRAME and stream:
                        self._armed.clear()
                        self.cuts += 1
                        self._close_all()
                        return
                    writer.write(pending[:end])
                    pending = pending[end:]
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    def _close_all(self) -> None:
        for writer in list(self._writers):
            with contextlib.suppress(Exception):
                writer.transport.abort()
        self._writers.clear()

    def stop(self) -> None:
        async def shutdown() -> None:
            self._close_all()
            if self._server is not None:
                self._server.close()
                await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

"""A status line on the terminal while a slow call runs, so a person sees it is working.

Nothing is shown for a call that ends within ``DELAY_S``, nor when standard error is not
a terminal (a script or a pipe never receives these lines); the line is erased when the
call ends, so the result prints where it would have without it.
"""

from __future__ import annotations

import sys
import threading
import time
from types import TracebackType
from typing import TextIO

DELAY_S = 0.3
FRAME_S = 0.1
FRAMES = "|/-\\"
ERASE_LINE = "\r\x1b[K"


class Progress:
    """``with Progress("running"):`` shows ``running 1.2 s (Ctrl-C cancels)`` once the
    block has run for ``DELAY_S``, updated until the block ends."""

    def __init__(self, label: str, *, stream: TextIO | None = None) -> None:
        self._label = label
        self._stream = stream if stream is not None else sys.stderr
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._shown = False

    def __enter__(self) -> Progress:
        if self._stream.isatty():
            self._thread = threading.Thread(target=self._run, name="shoal-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._shown:
            self._stream.write(ERASE_LINE)
            self._stream.flush()

    def _run(self) -> None:
        started = time.monotonic()
        if self._stop.wait(DELAY_S):
            return
        frame = 0
        while not self._stop.is_set():
            elapsed_s = time.monotonic() - started
            self._stream.write(
                f"{ERASE_LINE}{FRAMES[frame % len(FRAMES)]} {self._label} "
                f"{elapsed_s:.1f} s (Ctrl-C cancels)"
            )
            self._stream.flush()
            self._shown = True
            frame += 1
            self._stop.wait(FRAME_S)

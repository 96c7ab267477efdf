"""The child's end of a sandbox's lifeline: shut down when the supervising coordinator is gone.

A sandbox's `shoal serve` is started with the read end of a pipe (its descriptor in
`SHOAL_SANDBOX_LIFELINE_FD`) whose write end only the supervisor holds. Nothing is ever
written to it: a read returns only when the supervisor's process has ended, however it
ended, and the kernel closed its end. The sandbox then shuts down as on SIGTERM.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping

from coordinator.operators.sandbox_process import LIFELINE_ENV

log = logging.getLogger(__name__)


def watch_lifeline(
    on_lost: Callable[[], None], environment: Mapping[str, str] | None = None
) -> bool:
    """Calls `on_lost` from a thread of its own once the lifeline closes; False when this
    process has no lifeline (it is not a sandbox)."""
    raw = (os.environ if environment is None else environment).get(LIFELINE_ENV, "")
    if not raw.isdigit():
        return False
    descriptor = int(raw)

    def watch() -> None:
        while True:
            try:
                if not os.read(descriptor, 1):
                    break
            except InterruptedError:
                continue
            except OSError:
                break
        log.warning("the coordinator supervising this sandbox is gone: shutting down")
        on_lost()

    threading.Thread(target=watch, name="sandbox-lifeline", daemon=True).start()
    return True

"""What the memory backend tells an observer about its disk work: fsyncs, log bytes, checkpoints.

The grid stays free of metrics libraries: the coordinator hands a backend an object with
these three methods (its metrics families) and the log and partitions call it.
"""

from __future__ import annotations

from typing import Protocol


class StorageObserver(Protocol):
    def fsynced(self, seconds: float) -> None:
        """One fsync (fdatasync) of a log took this long."""

    def appended(self, frame_bytes: int) -> None:
        """A record of this many bytes (framing included) was written to a log."""

    def checkpointed(self, seconds: float) -> None:
        """A partition's checkpoint (Arrow file, new log, old files removed) took this long."""


class Unobserved:
    """Tells nobody."""

    def fsynced(self, seconds: float) -> None:
        pass

    def appended(self, frame_bytes: int) -> None:
        pass

    def checkpointed(self, seconds: float) -> None:
        pass


UNOBSERVED = Unobserved()

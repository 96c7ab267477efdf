"""Where a namespace's records live in Redis: one hash tag per partition, so a partition is one
Redis Cluster slot and a step's script may touch all of its keys."""

from __future__ import annotations

from dataclasses import dataclass

# The partition's fixed keys, in the order grid/redis/steps.lua reads them from KEYS.
FIXED_KEYS = ("m", "l", "o", "d", "s", "t", "hx", "oq", "dq", "tu", "tf")


@dataclass(frozen=True)
class PartitionLayout:
    namespace: str
    index: int

    @property
    def prefix(self) -> str:
        """``{<namespace>:p<n>}:``: every key of the partition starts with it."""
        return f"{{{self.namespace}:p{self.index}}}:"

    def fixed_keys(self) -> list[str]:
        return [self.prefix + name for name in FIXED_KEYS]

    @property
    def meta(self) -> str:
        return self.prefix + "m"

    @property
    def staged_set(self) -> str:
        return self.prefix + "s"

    @property
    def statuses(self) -> str:
        return self.prefix + "t"

    @property
    def undecided_statuses(self) -> str:
        return self.prefix + "tu"

    @property
    def decided_statuses(self) -> str:
        return self.prefix + "tf"

    def staged(self, txn: str) -> str:
        return f"{self.prefix}x:{txn}"

    def entries(self, map_name: str) -> str:
        return f"{self.prefix}e:{map_name}"

    def versions(self, map_name: str) -> str:
        return f"{self.prefix}v:{map_name}"

    def history(self, map_name: str, key: str) -> str:
        """The key's overwritten states, kept for reads at older versions."""
        return f"{self.prefix}h:{map_name}:{key}"

    def history_keys(self, map_name: str) -> str:
        return f"{self.prefix}hk:{map_name}"

    @property
    def expiring(self) -> str:
        return self.prefix + "hx"


def catalog_key(namespace: str) -> str:
    return f"{{{namespace}:catalog}}"

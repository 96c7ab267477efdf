"""Where a namespace's records live in Redis: one hash tag per partition, so a partition is one
Redis Cluster slot, and which of them each step of grid/redis/steps.lua declares in KEYS.

A step declares every key it touches (steps.lua refuses one it did not): Redis Cluster then
checks them all before the script runs, so while a slot migrates a step is redirected (ASK) or
told to try again (TRYAGAIN), never stopped half-way (docs/architecture/recovery.md, "Resharding").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

# The partition's own records (steps.lua names them from the prefix).
META, LOCKS, OUTCOMES, DECIDED, STAGED, STATUSES = "m", "l", "o", "d", "s", "t"
EXPIRING, OUTCOME_ORDER, DECIDED_ORDER, UNDECIDED, DECIDED_BY_TIME = "hx", "oq", "dq", "tu", "tf"
# Which of them each kind of step declares, besides the keys of the records it names.
APPLY_RECORDS = (META, LOCKS, OUTCOMES, OUTCOME_ORDER, EXPIRING)
PREPARE_RECORDS = (META, LOCKS, STAGED, DECIDED)
COMMIT_RECORDS = (META, LOCKS, STAGED, DECIDED, DECIDED_ORDER, OUTCOMES, OUTCOME_ORDER, EXPIRING)
ABORT_RECORDS = (META, LOCKS, STAGED, DECIDED, DECIDED_ORDER)
STATUS_RECORDS = (META, STATUSES, UNDECIDED, DECIDED_BY_TIME)


@dataclass(frozen=True)
class PartitionLayout:
    namespace: str
    index: int
    # Per map: its entries, versions, references and kept-keys hashes (built once per map: a
    # step's KEYS are assembled on the hot path).
    _maps: dict[str, tuple[str, str, str, str]] = field(
        default_factory=dict, compare=False, repr=False
    )

    @cached_property
    def prefix(self) -> str:
        """``{<namespace>:p<n>}:``: every key of the partition starts with it."""
        return f"{{{self.namespace}:p{self.index}}}:"

    def own(self, *names: str) -> list[str]:
        """The partition's own records of those names (META, LOCKS...)."""
        prefix = self.prefix
        return [prefix + name for name in names]

    def map_keys(self, map_name: str) -> tuple[str, str, str, str]:
        """The map's entries, versions, references and kept-keys hashes in this partition."""
        found = self._maps.get(map_name)
        if found is None:
            prefix = self.prefix
            found = (
                f"{prefix}e:{map_name}",
                f"{prefix}v:{map_name}",
                f"{prefix}r:{map_name}",
                f"{prefix}hk:{map_name}",
            )
            self._maps[map_name] = found
        return found

    @property
    def meta(self) -> str:
        return self.prefix + META

    @property
    def locks(self) -> str:
        return self.prefix + LOCKS

    @property
    def staged_set(self) -> str:
        return self.prefix + STAGED

    @property
    def statuses(self) -> str:
        return self.prefix + STATUSES

    @property
    def undecided_statuses(self) -> str:
        return self.prefix + UNDECIDED

    @property
    def decided_statuses(self) -> str:
        return self.prefix + DECIDED_BY_TIME

    def staged(self, txn: str) -> str:
        return f"{self.prefix}x:{txn}"

    def entries(self, map_name: str) -> str:
        return self.map_keys(map_name)[0]

    def versions(self, map_name: str) -> str:
        return self.map_keys(map_name)[1]

    def references(self, map_name: str) -> str:
        return self.map_keys(map_name)[2]

    def history(self, map_name: str, key: str) -> str:
        """The key's overwritten states, kept for reads at older versions."""
        return f"{self.prefix}h:{map_name}:{key}"

    def history_keys(self, map_name: str) -> str:
        return self.map_keys(map_name)[3]

    @property
    def expiring(self) -> str:
        return self.prefix + EXPIRING


def catalog_key(namespace: str) -> str:
    return f"{{{namespace}:catalog}}"

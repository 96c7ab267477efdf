"""The messages of the partition participant protocol: events in, actions and replies out.

Each event is one atomic step of one partition (see grid.participant); a shared
backend runs the same step as one script or one transaction of its store.
"""

from __future__ import annotations

from dataclasses import dataclass

from grid.errors import GridError
from grid.memory.records import Op, Record

# Transaction status values, in the order a committing transaction passes them.
PENDING = "pending"
PRE_COMMITTED = "pre_committed"
COMMITTED = "committed"
ABORTED = "aborted"
FINAL_STATES = (COMMITTED, ABORTED)
STATUS_ORDER = {PENDING: 0, PRE_COMMITTED: 1, COMMITTED: 2, ABORTED: 2}


@dataclass(frozen=True, slots=True)
class Condition:
    """A precondition on a write: 'if_version' (with version), 'if_absent' or 'if_exists'."""

    kind: str
    version: int = 0


@dataclass(frozen=True, slots=True)
class Read:
    map: str
    key: str
    version: int


@dataclass(frozen=True, slots=True)
class Write:
    op: Op
    map: str
    key: str
    value: bytes = b""
    condition: Condition | None = None


# Events -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ApplyOnePhase:
    """Validate and apply at once: a plain write or a transaction on one partition."""

    request_id: bytes
    reads: tuple[Read, ...]
    writes: tuple[Write, ...]
    # The commit's place in the commit sequence, which becomes the version of every
    # key it writes; 0 (tests only) takes the record's log position instead.
    version: int = 0
    # The oldest version reads may still use: older overwritten states can go.
    horizon: int = 0
    # On a shared store, when the commit number's lease ends (store clock, ms): after it
    # another coordinator may release the number, so the step refuses (StaleVersion) and the
    # coordinator applies with a new number. 0: no deadline (the in-process sequence).
    deadline_ms: int = 0


@dataclass(frozen=True, slots=True)
class Prepare:
    """CanCommit: stage the writes under locks and vote."""

    txn_id: bytes
    reads: tuple[Read, ...]
    writes: tuple[Write, ...]
    lease_expires_ms: int
    status_partition: int
    # A read-only validation keeps its locks in memory only: there is nothing to recover.
    durable: bool = True


@dataclass(frozen=True, slots=True)
class PreCommit:
    txn_id: bytes


@dataclass(frozen=True, slots=True)
class Commit:
    txn_id: bytes
    # As in ApplyOnePhase: the commit's place in the commit sequence, and the horizon.
    version: int = 0
    horizon: int = 0


@dataclass(frozen=True, slots=True)
class Abort:
    txn_id: bytes


@dataclass(frozen=True, slots=True)
class CreateStatus:
    txn_id: bytes
    participants: tuple[int, ...]
    lease_expires_ms: int
    now_ms: int


@dataclass(frozen=True, slots=True)
class CasStatus:
    txn_id: bytes
    expected: str
    new: str
    now_ms: int
    # When set, the swap also moves the record's lease: the coordinator driving a transaction
    # renews it by swapping its state for itself (expected == new), so no other coordinator's
    # sweeper presumes it dead while it drives (and a swap lost to a sweeper renews nothing).
    lease_expires_ms: int = 0


@dataclass(frozen=True, slots=True)
class ReadStatus:
    txn_id: bytes


@dataclass(frozen=True, slots=True)
class ReadOutcome:
    """Asks for the remembered answer of a write step (a request id or a committed txn)."""

    request_id: bytes


@dataclass(frozen=True, slots=True)
class ForgetStatus:
    """Drops a final status record once every participant has applied the decision."""

    txn_id: bytes


@dataclass(frozen=True, slots=True)
class DropMap:
    map: str


@dataclass(frozen=True, slots=True)
class ForgetVersions:
    """Drops overwritten states no read can need any more (nothing is logged)."""

    horizon: int


Event = (
    ApplyOnePhase
    | Prepare
    | PreCommit
    | Commit
    | Abort
    | CreateStatus
    | CasStatus
    | ReadStatus
    | ReadOutcome
    | ForgetStatus
    | DropMap
    | ForgetVersions
)

# Actions and replies ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Persist:
    record: Record


@dataclass(frozen=True, slots=True)
class Applied:
    """A write step's answer: each write's new version (0 where it left no value), and
    the positions of the DELETE writes that removed a value (so a delete's "existed"
    comes from the step itself, and a retry gets it from the remembered answer)."""

    versions: tuple[int, ...]
    replayed: bool = False
    removed: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Vote:
    yes: bool
    reason: str = ""
    error: GridError | None = None


@dataclass(frozen=True, slots=True)
class Ack:
    known: bool = True


@dataclass(frozen=True, slots=True)
class StatusReply:
    state: str | None
    participants: tuple[int, ...] = ()
    lease_expires_ms: int = 0
    swapped: bool = False


@dataclass(frozen=True, slots=True)
class Failed:
    error: GridError


Reply = Applied | Vote | Ack | StatusReply | Failed


@dataclass(frozen=True, slots=True)
class Send:
    reply: Reply


Action = Persist | Send

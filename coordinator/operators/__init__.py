"""Operators' tools: sandboxes (isolated child grids) and diffs; replays of a Kafka range,
backfills, reconciliation; and their long operations.

What other operator tools use of sandboxes, from `coordinator.operators.sandboxes`:

    sandboxes: Sandboxes               # built by coordinator.server.start, one per coordinator
    sandboxes.address_of("incident-42")  # "127.0.0.1:PORT" users reach a ready sandbox at, or
                                         # raises NotFound (unknown name) / FailedPrecondition
    with sandboxes.channel("incident-42") as channel:  # production's own calls into it: a
        ...                                            # gRPC channel over its private socket
    sandboxes.describe("incident-42")    # a SandboxView (state, address, snapshot version, ...)
    sandboxes.note_replay("incident-42", replay_id)  # listed under the sandbox's "replays"

and from `coordinator.operators.operations`, `Operations`: a long operation as a
resource with an id, its progress updated by the work and watched by callers.
"""

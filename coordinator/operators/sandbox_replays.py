"""Which replays a sandbox has run: asked of the sandbox's own coordinator, where they run.

A replay into a sandbox runs in the sandbox's coordinator (its offsets and outcomes are
committed in the sandbox's grid), so the sandbox is where its list is. A sandbox that
does not answer in time (busy, or refusing production's unauthenticated call) reports
none; describe then shows the replays production noted itself.
"""

from __future__ import annotations

import grpc

from shoal.v1 import replay_pb2, replay_pb2_grpc

LIST_TIMEOUT_S = 2.0


def replays_in(channel: grpc.Channel) -> list[str]:
    """The ids of the replays the sandbox on `channel` knows (see `Sandboxes.channel`)."""
    try:
        reply = replay_pb2_grpc.ReplaysStub(channel).List(
            replay_pb2.ListReplaysRequest(), timeout=LIST_TIMEOUT_S
        )
    except grpc.RpcError:
        return []
    return [status.id for status in reply.replays]

"""grid/redis/steps.lua loaded into Redis: a function library called with FCALL, or a script
called with EVALSHA where Redis has no functions (before 7.0, or a service that refuses them).

A function library is loaded once; a call runs just its step. The same code sent as a script
first runs the whole file again on every call, building each of its functions: about 12 µs of
the server per step, more than a read step spends on its data. The library is named by its
content, so coordinators of two versions of Shoal each call their own. It is loaded by the
first call on a server that does not have it ("Function not found": a fresh or restarted
server, a master added to the cluster): on every master, then the call is repeated.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import redis
from redis.cluster import RedisCluster

log = logging.getLogger(__name__)

SOURCE = (Path(__file__).parent / "steps.lua").read_text()
FUNCTION = "shoal_steps_" + hashlib.sha1(SOURCE.encode()).hexdigest()[:16]
LIBRARY = f"#!lua name={FUNCTION}\n{SOURCE}\nredis.register_function('{FUNCTION}', entry)\n"
# KEYS and ARGV are taken before steps.lua declares its own ARGV.
SCRIPT = (
    f"local SCRIPT_KEYS, SCRIPT_ARGV = KEYS, ARGV\n{SOURCE}\n"
    "return entry(SCRIPT_KEYS, SCRIPT_ARGV)\n"
)


def is_missing(error: redis.exceptions.ResponseError) -> bool:
    return "Function not found" in str(error)


class StepsLibrary:
    """``steps(keys, args)``: one call of steps.lua's entry (FCALL, or EVALSHA when
    ``functions`` is False or the server refuses FUNCTION LOAD)."""

    def __init__(self, client: Any, *, functions: bool = True) -> None:
        self._client = client
        self._script: Any = None if functions else client.register_script(SCRIPT)

    @property
    def uses_functions(self) -> bool:
        return self._script is None

    def load(self) -> None:
        client: Any = self._client
        try:
            if isinstance(self._client, RedisCluster):
                # Every master: a step may run on any of them (and moves with its slot).
                client.execute_command(
                    "FUNCTION", "LOAD", "REPLACE", LIBRARY, target_nodes=RedisCluster.PRIMARIES
                )
            else:
                client.function_load(LIBRARY, replace=True)
        except redis.exceptions.ResponseError as error:
            if "unknown command" not in str(error).lower() and "NOPERM" not in str(error):
                raise
            # Redis 6, or a managed service without FUNCTION: the same steps as a script.
            log.info("Redis refuses function libraries (%s); steps run as a script", error)
            self._script = client.register_script(SCRIPT)

    def __call__(self, keys: Sequence[str], args: Sequence[Any]) -> Any:
        try:
            return self._run(keys, args)
        except redis.exceptions.ResponseError as error:
            if not is_missing(error):
                raise
        self.load()
        return self._run(keys, args)

    def _run(self, keys: Sequence[str], args: Sequence[Any]) -> Any:
        if self._script is not None:
            # redis-py sends EVALSHA and loads the script again after NOSCRIPT.
            return self._script(keys=keys, args=args, client=self._client)
        return self._client.fcall(FUNCTION, len(keys), *keys, *args)

    def pipe_call(self, pipe: Any, keys: Sequence[str], args: Sequence[Any]) -> None:
        """Queues one call on a pipeline (execute_command: a cluster pipeline has no fcall)."""
        if self._script is not None:
            pipe.execute_command("EVALSHA", self._script.sha, len(keys), *keys, *args)
        else:
            pipe.execute_command("FCALL", FUNCTION, len(keys), *keys, *args)

    def missing(self, error: redis.exceptions.ResponseError) -> bool:
        """Whether a pipeline's error says this server lacks the steps (then load() them)."""
        return is_missing(error) or isinstance(error, redis.exceptions.NoScriptError)

    def reload(self) -> None:
        if self._script is not None:
            self._client.script_load(SCRIPT)
        else:
            self.load()

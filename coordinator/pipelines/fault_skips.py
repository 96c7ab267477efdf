"""A test-only fault: a pipeline that loses a range of records, as a consumer bug would.

``SHOAL_PIPELINE_SKIP=<group>/<topic>/<partition>:<from>-<to>,...`` (with
``SHOAL_TESTING=1``) makes the pipeline of that group drop the records of offsets
[from, to) before applying a batch: their offsets are committed past, and nothing else
happens. Reconciliation tests use it to make a real gap.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

Skips = dict[tuple[str, str, int], list[tuple[int, int]]]


def skips_from_environment(environment: Mapping[str, str] = os.environ) -> Skips:
    spec = environment.get("SHOAL_PIPELINE_SKIP", "")
    if not spec:
        return {}
    if environment.get("SHOAL_TESTING") != "1":
        raise ValueError("SHOAL_PIPELINE_SKIP is honoured only with SHOAL_TESTING=1")
    skips: Skips = {}
    for item in spec.split(","):
        where, _, span = item.strip().rpartition(":")
        group, topic, partition = where.rsplit("/", 2)
        low, _, high = span.partition("-")
        skips.setdefault((group, topic, int(partition)), []).append((int(low), int(high)))
    return skips


def skipped(ranges: list[tuple[int, int]], offset: int) -> bool:
    return any(low <= offset < high for low, high in ranges)

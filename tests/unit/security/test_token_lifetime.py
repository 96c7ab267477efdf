"""A token's lifetime is bounded: a huge ttl_s (the RPC fuzzer sent a 63-bit one) is the
caller's error naming the field, never an expiry time past 64 bits."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from coordinator import config as config_module
from coordinator.security.accounts import TOKEN_TTL_S_MAX
from coordinator.security.setup import Security
from grid.errors import InvalidArgument
from tests.support.pipelines import open_node


@pytest.fixture
def security(tmp_path: Path) -> Iterator[Any]:
    node = open_node(tmp_path / "data")
    config = config_module.load({"auth": "on", "data_dir": str(tmp_path / "data")}, environment={})
    created = Security(config, node)
    try:
        yield created
    finally:
        created.close()
        node.close()


@pytest.mark.parametrize("ttl_s", [TOKEN_TTL_S_MAX + 1, 2**63 - 1, -1])
def test_a_lifetime_out_of_range_is_refused_naming_ttl_s(security: Any, ttl_s: int) -> None:
    with pytest.raises(InvalidArgument) as caught:
        security.accounts.create_token("svc-orders", ["reader:orders*"], [], ttl_s=ttl_s)
    assert caught.value.field == "ttl_s"
    assert security.accounts.list_tokens("svc-orders") == []


def test_the_longest_lifetime_is_accepted(security: Any) -> None:
    _, record = security.accounts.create_token(
        "svc-orders", ["reader:orders*"], [], ttl_s=TOKEN_TTL_S_MAX
    )
    assert record.expires_ms == record.created_ms + TOKEN_TTL_S_MAX * 1000

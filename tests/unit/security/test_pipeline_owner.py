"""A pipeline writes only the maps it declares; with auth on, its owner must hold
`write` on them (and `pipelines` on its name) when it loads."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from coordinator import config as config_module
from coordinator.config import ConfigError
from coordinator.pipelines.transaction import BatchTransaction
from coordinator.security.setup import Security
from grid.errors import InvalidArgument
from shoal.pipelines import PipelineSpec, pipeline
from tests.support.pipelines import open_node


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Any]:
    created = open_node(tmp_path / "data")
    created.create_map("orders.eu")
    created.create_map("customers")
    yield created
    created.close()


def _spec(**declared: Any) -> PipelineSpec:
    def apply(event: Any, tx: Any) -> None:
        pass

    decorated = pipeline(topic="orders", group="orders-to-grid", **declared)(apply)
    spec: PipelineSpec = decorated.__shoal_pipeline__  # type: ignore[attr-defined]
    return spec


def test_a_write_outside_the_declared_maps_is_refused(node: Any) -> None:
    transaction = BatchTransaction(node, ("orders*",))
    transaction.begin_event()
    transaction.put("orders.eu", "o1", {"n": 1})
    with pytest.raises(InvalidArgument, match="not among the maps this pipeline declares"):
        transaction.put("customers", "c1", {"n": 1})
    transaction.end_event(False)


def test_the_decorator_keeps_owner_and_writes() -> None:
    spec = _spec(owner="svc-orders", writes="orders*")
    assert (spec.owner, spec.writes) == ("svc-orders", ("orders*",))
    with pytest.raises(ValueError, match="writes"):
        _spec(writes=[""])


def test_with_auth_on_the_owner_must_hold_write_on_what_the_pipeline_writes(
    node: Any, tmp_path: Path
) -> None:
    config = config_module.load({"auth": "on", "data_dir": str(tmp_path / "data")}, environment={})
    security = Security(config, node)
    try:
        security.accounts.create_token("svc-orders", ["writer:orders*", "pipelines:orders-*"], [])
        security.check_pipelines([_spec(owner="svc-orders", writes=["orders*"])])
        with pytest.raises(ConfigError, match="lacks permission 'write' on map 'customers'"):
            security.check_pipelines([_spec(owner="svc-orders", writes=["orders*", "customers"])])
        with pytest.raises(ConfigError, match=r"lacks permission 'write' on map '\*'"):
            security.check_pipelines([_spec(owner="svc-orders", writes=["*"])])
        with pytest.raises(ConfigError, match="must declare owner="):
            security.check_pipelines([_spec()])
        audit = (tmp_path / "data" / "audit.log").read_text()
        assert '"action":"pipeline-load"' in audit and '"outcome":"denied"' in audit
    finally:
        security.close()


def test_with_auth_off_nothing_is_required(node: Any, tmp_path: Path) -> None:
    config = config_module.load({"auth": "off"}, environment={})
    security = Security(config, node)
    security.check_pipelines([_spec()])
    security.close()

"""Pipeline code an operator sends: loaded, or refused naming the module and the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from coordinator.operators.pipeline_code import load_pipeline
from grid.errors import InvalidArgument
from tests.support.pipelines import open_node

TWO = """
from shoal.pipelines import pipeline

@pipeline(topic="a", group="first-code-test")
def first(event, tx):
    pass

@pipeline(topic="b", group="second-code-test")
def second(event, tx):
    pass
"""


@pytest.fixture
def node(tmp_path: Path):
    created = open_node(tmp_path / "data")
    yield created
    created.close()


def test_a_pipeline_is_picked_by_name_or_as_the_only_one(node):
    assert load_pipeline("second-code-test", "two.py", TWO, node.catalog).spec.topics == ("b",)
    one = TWO.split('@pipeline(topic="b"', maxsplit=1)[0]
    assert load_pipeline("", "one.py", one, node.catalog).name == "first-code-test"


@pytest.mark.parametrize(
    ("name", "source", "named"),
    [
        ("", "import no_such_module_for_shoal\n", "orders_v2.py"),
        ("", "def apply(:\n", "orders_v2.py"),
        ("", "x = 1\n", "declares no @pipeline"),
        ("", "   \n", "empty"),
        ("", TWO, "say which one"),
        ("third", TWO, "no pipeline named 'third'"),
    ],
)
def test_bad_code_is_refused_naming_the_module(node, name, source, named):
    with pytest.raises(InvalidArgument) as raised:
        load_pipeline(name, "orders_v2.py", source, node.catalog)
    assert named in raised.value.message
    assert raised.value.field == "pipeline"

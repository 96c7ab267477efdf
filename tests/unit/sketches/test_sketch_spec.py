"""Specs: defaults, normalization, JSON, and refusals that name the parameter."""

import pytest

from grid.sketches import SketchError, SketchKind, SketchParameterError, SketchSpec


def test_defaults_are_filled_in():
    assert SketchSpec.of("hll").params == {"lg_k": 12}
    assert SketchSpec.of("kll").params == {"k": 200}
    assert SketchSpec.of("topk").params == {"lg_max_k": 10, "k": 10}
    assert SketchSpec.of("bloom", capacity_items=100).params == {
        "capacity_items": 100,
        "error_rate": 0.01,
    }


def test_top_k_default_k_shrinks_with_a_small_map():
    assert SketchSpec.of("topk", lg_max_k=3).params == {"lg_max_k": 3, "k": 6}


def test_count_min_error_form_becomes_its_shape():
    by_error = SketchSpec.of("cms", epsilon=0.01, delta=0.01)
    assert by_error.params == {"width": 272, "depth": 5}
    assert by_error == SketchSpec.of("cms", width=272, depth=5)
    assert hash(by_error) == hash(SketchSpec.of("cms", width=272, depth=5))


def test_kind_is_a_string_enum():
    spec = SketchSpec("hll", {})  # type: ignore[arg-type]
    assert spec.kind is SketchKind.HYPERLOGLOG
    assert spec.kind == "hll"


@pytest.mark.parametrize(
    "spec",
    [
        SketchSpec.of("hll", lg_k=4),
        SketchSpec.of("cms", width=3, depth=1),
        SketchSpec.of("bloom", capacity_items=10, error_rate=0.001),
        SketchSpec.of("reservoir", k=100_000),
        SketchSpec.of("kll", k=8),
        SketchSpec.of("topk", lg_max_k=24, k=5),
    ],
)
def test_json_round_trip(spec):
    assert SketchSpec.from_json(spec.to_json()) == spec
    assert SketchSpec.from_json(spec.to_json().encode()) == spec
    assert SketchSpec.from_dict(spec.to_dict()) == spec
    assert spec.to_dict() == {"kind": spec.kind.value, "params": dict(spec.params)}


def test_params_cannot_be_changed():
    spec = SketchSpec.of("hll")
    with pytest.raises(TypeError):
        spec.params["lg_k"] = 5  # type: ignore[index]


@pytest.mark.parametrize(
    ("kind", "params", "parameter", "reason_part"),
    [
        ("hll", {"lg_k": 3}, "lg_k", "from 4 to 21"),
        ("hll", {"lg_k": 22}, "lg_k", "from 4 to 21"),
        ("hll", {"lg_k": 12.0}, "lg_k", "integer"),
        ("hll", {"lg_k": True}, "lg_k", "integer"),
        ("cms", {}, "width, depth", "required"),
        ("cms", {"width": 100}, "depth", "required"),
        ("cms", {"width": 2, "depth": 3}, "width", "from 3"),
        ("cms", {"width": 100, "depth": 33}, "depth", "from 1 to 32"),
        ("cms", {"width": 100, "epsilon": 0.1}, "epsilon, delta", "not both"),
        ("cms", {"epsilon": 0.1}, "delta", "required"),
        ("cms", {"epsilon": 0.0, "delta": 0.1}, "epsilon", "between 0 and 1"),
        ("cms", {"epsilon": 0.1, "delta": 1.0}, "delta", "between 0 and 1"),
        ("cms", {"epsilon": 1e-9, "delta": 0.1}, "epsilon", "buckets"),
        ("cms", {"width": 1 << 24, "depth": 32}, "width", "limit"),
        ("bloom", {}, "capacity_items", "required"),
        ("bloom", {"capacity_items": 0}, "capacity_items", "from 1"),
        ("bloom", {"capacity_items": 10, "error_rate": 0}, "error_rate", "between 0 and 1"),
        ("bloom", {"capacity_items": 10, "error_rate": 1.5}, "error_rate", "between 0 and 1"),
        ("bloom", {"capacity_items": 10, "error_rate": "0.1"}, "error_rate", "number"),
        ("bloom", {"capacity_items": 10**9, "error_rate": 0.001}, "capacity_items", "limit"),
        ("reservoir", {}, "k", "required"),
        ("reservoir", {"k": 0}, "k", "from 1 to 100000"),
        ("reservoir", {"k": 100_001}, "k", "from 1 to 100000"),
        ("kll", {"k": 7}, "k", "from 8 to 65535"),
        ("kll", {"k": 65_536}, "k", "from 8 to 65535"),
        ("topk", {"lg_max_k": 2}, "lg_max_k", "from 3 to 24"),
        ("topk", {"lg_max_k": 25}, "lg_max_k", "from 3 to 24"),
        ("topk", {"lg_max_k": 3, "k": 7}, "k", "from 1 to 6"),
        ("topk", {"k": 0}, "k", "from 1"),
    ],
)
def test_bad_parameters_name_the_parameter_and_reason(kind, params, parameter, reason_part):
    with pytest.raises(SketchParameterError) as caught:
        SketchSpec.of(kind, **params)
    assert caught.value.parameter == parameter
    assert reason_part in caught.value.reason
    assert str(caught.value).startswith(f"{parameter}: ")
    assert isinstance(caught.value, SketchError)
    assert isinstance(caught.value, ValueError)


def test_unknown_parameters_are_named():
    with pytest.raises(SketchParameterError) as caught:
        SketchSpec.of("hll", lg_k=12, precision=3, colour=1)
    assert caught.value.parameter == "colour, precision"
    assert "lg_k" in caught.value.reason


def test_unknown_kind_is_refused():
    with pytest.raises(SketchParameterError) as caught:
        SketchSpec.of("theta")
    assert caught.value.parameter == "kind"
    assert "hll" in caught.value.reason


@pytest.mark.parametrize(
    ("text", "parameter"),
    [
        ("not json", "spec"),
        ("[1, 2]", "spec"),
        ('{"params": {}}', "kind"),
        ('{"kind": "hll", "params": [1]}', "params"),
        ('{"kind": "hll", "params": {}, "extra": 1}', "spec"),
        ('{"kind": 7, "params": {}}', "kind"),
    ],
)
def test_bad_json_is_refused(text, parameter):
    with pytest.raises(SketchParameterError) as caught:
        SketchSpec.from_json(text)
    assert caught.value.parameter == parameter

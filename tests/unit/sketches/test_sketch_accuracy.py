"""AccuracyMonitor: observed error on a sample of keys, within bounds, in bounded memory."""

import random

import numpy as np
import pytest

from grid.sketches import AccuracyMonitor, SketchKind, SketchParameterError, SketchSpec, new_sketch

SPECS = {
    SketchKind.HYPERLOGLOG: SketchSpec.of("hll", lg_k=10),
    SketchKind.COUNT_MIN: SketchSpec.of("cms", epsilon=0.01, delta=0.01),
    SketchKind.BLOOM: SketchSpec.of("bloom", capacity_items=2_000, error_rate=0.02),
    SketchKind.RESERVOIR: SketchSpec.of("reservoir", k=20),
    SketchKind.KLL: SketchSpec.of("kll", k=100),
    SketchKind.TOP_K: SketchSpec.of("topk", lg_max_k=5),
}


def batches_for(kind, generator):
    """Three batches of a stream that suits the kind."""
    if kind is SketchKind.KLL:
        return [generator.normal(size=1_000) for _ in range(3)]
    if kind is SketchKind.BLOOM:
        return [generator.integers(0, 10**9, size=600).tolist() for _ in range(3)]
    return [generator.zipf(1.4, size=1_000).tolist() for _ in range(3)]


def test_sampling_is_deterministic_and_near_the_rate():
    monitor = AccuracyMonitor(sample_rate=0.05)
    keys = [f"key-{index}" for index in range(20_000)]
    sampled = [key for key in keys if monitor.is_sampled(key)]
    assert 0.045 < len(sampled) / len(keys) < 0.055
    assert sampled == [key for key in keys if AccuracyMonitor(sample_rate=0.05).is_sampled(key)]
    assert AccuracyMonitor(sample_rate=1.0).is_sampled(b"\x00")


def test_reports_errors_within_bounds_for_every_kind():
    monitor = AccuracyMonitor(sample_rate=0.05, max_tracked_keys=1_000)
    generator = np.random.default_rng(5)
    rng = random.Random(5)
    keys = [f"key-{index}" for index in range(600)]
    measured = {kind: 0 for kind in SPECS}
    for kind, spec in SPECS.items():
        for key in keys:
            if not monitor.is_sampled(f"{kind}:{key}"):
                continue
            sketch = new_sketch(spec, rng=rng)
            for batch in batches_for(kind, generator):
                sketch.update_many(batch)
                assert monitor.observe(f"{kind}:{key}", spec, batch)
            stats = monitor.measure(f"{kind}:{key}", sketch)
            assert stats is not None
            measured[kind] += 1
    report = monitor.report()
    assert set(report) == set(SPECS)
    for kind, stats in report.items():
        assert measured[kind] >= 20, kind
        assert stats.kind is kind
        assert stats.samples >= measured[kind]
        assert stats.outside_bound == 0, stats
        assert stats.mean_relative_error <= stats.max_relative_error <= stats.error_bound
    # The report is keyed by kind, so plain kind names work too.
    assert report["hll"].samples == measured[SketchKind.HYPERLOGLOG]


def test_a_wrong_sketch_shows_as_out_of_bound():
    monitor = AccuracyMonitor(sample_rate=1.0)
    spec = SPECS[SketchKind.HYPERLOGLOG]
    sketch = new_sketch(spec)
    items = [f"item-{index}" for index in range(10_000)]
    sketch.update_many(items[:5_000])
    monitor.observe("key", spec, items)
    stats = monitor.measure("key", sketch)
    assert stats is not None
    assert stats.outside_bound == 1
    assert stats.max_relative_error == pytest.approx(0.5, abs=0.05)


def test_memory_is_bounded():
    monitor = AccuracyMonitor(sample_rate=1.0, max_tracked_keys=3, max_exact_items_per_key=100)
    spec = SPECS[SketchKind.HYPERLOGLOG]
    for key in ("a", "b", "c", "d"):
        monitor.observe(key, spec, ["x", "y"])
    assert monitor.tracked_keys == 3
    assert monitor.refused_keys == 1
    monitor.observe("a", spec, [str(index) for index in range(101)])
    assert monitor.overflowed_keys == 1
    sketch = new_sketch(spec)
    assert monitor.measure("a", sketch) is None
    assert monitor.measure("d", sketch) is None
    monitor.forget("a")
    assert monitor.tracked_keys == 2
    monitor.observe("d", spec, ["x"])
    assert monitor.tracked_keys == 3


def test_a_changed_spec_starts_over():
    monitor = AccuracyMonitor(sample_rate=1.0)
    monitor.observe("key", SketchSpec.of("hll"), ["a", "b"])
    kll = SketchSpec.of("kll")
    monitor.observe("key", kll, [1.0])
    sketch = new_sketch(kll)
    sketch.update_many([1.0])
    assert monitor.measure("key", sketch) is not None
    assert monitor.measure("key", new_sketch(SketchSpec.of("hll"))) is None


@pytest.mark.parametrize(
    ("arguments", "parameter"),
    [
        ({"sample_rate": 0.0}, "sample_rate"),
        ({"sample_rate": 1.5}, "sample_rate"),
        ({"max_tracked_keys": 0}, "max_tracked_keys"),
        ({"max_exact_items_per_key": 0}, "max_exact_items_per_key"),
    ],
)
def test_bad_settings_are_refused(arguments, parameter):
    with pytest.raises(SketchParameterError) as caught:
        AccuracyMonitor(**arguments)
    assert caught.value.parameter == parameter

"""The memory keeper: gauges of the resident size, and when freed memory is handed back."""

from __future__ import annotations

from coordinator.memory import MemoryKeeper, held_free_bytes, resident_bytes
from coordinator.metrics import Registry

MIB = 1024 * 1024


class FakeProcess:
    def __init__(self) -> None:
        self.resident = 100 * MIB
        self.free = 0
        self.trims = 0

    def trim(self) -> None:
        self.trims += 1
        self.resident -= self.free
        self.free = 0


def keeper_of(process: FakeProcess, registry: Registry, growth: int = 64 * MIB) -> MemoryKeeper:
    return MemoryKeeper(
        registry,
        trim_growth_bytes=growth,
        measure=lambda: process.resident,
        held_free=lambda: process.free,
        trim=process.trim,
    )


def test_freed_memory_past_the_threshold_is_handed_back_once() -> None:
    process, registry = FakeProcess(), Registry()
    keeper = keeper_of(process, registry)
    process.resident, process.free = 900 * MIB, 700 * MIB
    assert keeper.sample() == 200 * MIB
    assert process.trims == 1
    assert keeper.sample() == 200 * MIB
    assert process.trims == 1
    assert registry.render().count("shoal_memory_trims_total 1.0") == 1
    assert registry.value("shoal_process_resident_bytes") == 200 * MIB


def test_growth_alone_triggers_a_trim_where_free_memory_is_unknown() -> None:
    process, registry = FakeProcess(), Registry()
    keeper = keeper_of(process, registry)
    process.resident = 150 * MIB
    keeper.sample()
    assert process.trims == 0
    process.resident = 200 * MIB
    keeper.sample()
    assert process.trims == 1
    # Growth counts from the size after that trim.
    process.resident = 250 * MIB
    keeper.sample()
    assert process.trims == 1


def test_a_zero_threshold_never_trims() -> None:
    process, registry = FakeProcess(), Registry()
    keeper = keeper_of(process, registry, growth=0)
    process.resident, process.free = 5000 * MIB, 4000 * MIB
    keeper.sample()
    assert process.trims == 0


def test_this_process_is_measured() -> None:
    assert resident_bytes() > MIB
    assert held_free_bytes() >= 0

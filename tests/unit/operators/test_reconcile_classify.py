"""Reconciliation's verdict on each offset Kafka holds, from the ledgers' outcomes."""

from __future__ import annotations

from coordinator.operators.reconcile import PartitionReport, classify


def report_of(held, codes, *, committed, floor=0):
    report = PartitionReport("orders", 0, held[0] if held else 0, (held[-1] + 1) if held else 0)
    report.kafka_events = len(held)
    classify(report, held, codes, committed=committed, floor=floor)
    return report


def test_a_clean_window_has_no_discrepancy():
    held = list(range(10, 20))
    codes = {offset: ["a"] for offset in held}
    codes[12] = ["r"]
    codes[15] = ["d"]
    report = report_of(held, codes, committed=20)
    assert (report.applied, report.rejected, report.duplicates) == (8, 1, 1)
    assert report.missing == [] and report.applied_twice == [] and report.discrepancies == 0


def test_missing_and_twice_applied_offsets_make_ranges_over_the_offsets_kafka_holds():
    # Offsets 13 and 16 are transaction markers: Kafka holds no record there.
    held = [10, 11, 12, 14, 15, 17, 18, 19]
    codes = {10: ["a"], 11: ["a"], 17: ["a", "a"], 18: ["a", "a"], 19: ["a"]}
    report = report_of(held, codes, committed=20)
    # 12, 14, 15 are one gap (13 is not a record); 17-18 were applied twice.
    assert report.missing == [(12, 16)]
    assert report.applied_twice == [(17, 19)]
    # Counted in events: the marker inside the gap is not one.
    assert report.discrepancies == 3 + 2
    assert report.applied == 5


def test_lag_is_pending_and_the_forgotten_past_is_unverifiable():
    held = list(range(0, 10))
    codes = {offset: ["a"] for offset in range(4, 7)}
    report = report_of(held, codes, committed=7, floor=4)
    assert report.unverifiable == 4 and report.pending == 3
    assert report.missing == [] and report.applied == 3

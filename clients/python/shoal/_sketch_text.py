"""Sketch answers as `shoal sketches` prints them: for people (each figure with its error
bound) and as JSON-ready documents for `--json`."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

from shoal._sketch_results import (
    BloomSummary,
    CountMinSummary,
    DistinctCount,
    Estimate,
    Frequency,
    QuantileSummary,
    Rank,
    ReservoirSample,
    TopItems,
)


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(header), *(len(row[i]) for row in rows)) for i, header in enumerate(headers)]
    lines = ["  ".join(header.ljust(width) for header, width in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * width for width in widths))
    lines.extend(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    )
    return "\n".join(line.rstrip() for line in lines)


def estimate_document(answer: Estimate) -> dict[str, Any]:
    """An estimate as JSON-ready data."""
    if isinstance(answer, DistinctCount):
        return {
            "kind": "hll",
            "value": answer.value,
            "intervals": {
                str(deviations): list(bounds) for deviations, bounds in answer.intervals.items()
            },
            "relative_standard_error": answer.relative_standard_error,
            "keys_found": answer.keys_found,
            "memory_bytes": answer.memory_bytes,
        }
    return dataclasses.asdict(answer)


def describe(answer: Estimate) -> str:
    """An estimate for people: the figure, then its error bound."""
    if isinstance(answer, DistinctCount):
        lower, upper = answer.interval(2)
        return (
            f"{answer.value:,.0f} distinct (95%: {lower:,.0f} to {upper:,.0f}; "
            f"relative standard error {answer.relative_standard_error:.2%})"
        )
    if isinstance(answer, CountMinSummary):
        return (
            f"{answer.total_weight:,.0f} items; every frequency overestimates by at most "
            f"{answer.error_bound:,.1f} (epsilon {answer.epsilon:.3g}) with probability "
            f"{answer.confidence:.3f}"
        )
    if isinstance(answer, BloomSummary):
        return (
            f"{answer.items_added:,} items added; {answer.bits_set:,} of {answer.bits:,} bits set; "
            f"expected false-positive rate {answer.expected_false_positive_rate:.3g} "
            f"(configured {answer.error_rate:g} at {answer.capacity_items:,} items)"
        )
    if isinstance(answer, ReservoirSample):
        lines = [json.dumps(item, ensure_ascii=False) for item in answer.items]
        return "\n".join([*lines, f"({len(answer.items)} of {answer.items_seen:,} items seen)"])
    if isinstance(answer, QuantileSummary):
        rows = [
            [f"{item.rank:g}", f"{item.value:g}", f"{item.lower_value:g} to {item.upper_value:g}"]
            for item in answer.quantiles
        ]
        return (
            table(["rank", "value", "99% range"], rows)
            + f"\n({answer.items_seen:,} items; rank error {answer.normalized_rank_error:.3%})"
        )
    assert isinstance(answer, TopItems)
    rows = [
        [item.item, str(item.estimate), f"{item.lower_bound} to {item.upper_bound}"]
        for item in answer.items
    ]
    return (
        table(["item", "estimate", "bounds"], rows) if rows else "(empty)"
    ) + f"\n(total weight {answer.total_weight:,}; maximum error {answer.maximum_error:,})"


def describe_frequencies(answers: Sequence[Frequency]) -> str:
    rows = [
        [item.item, f"{item.value:,.0f}", f"{item.lower_bound:,.0f} to {item.upper_bound:,.0f}"]
        for item in answers
    ]
    first = answers[0]
    certainty = (
        "certain bounds"
        if first.confidence >= 1
        else f"bounds hold with probability {first.confidence:.3f}"
    )
    return (
        table(["item", "estimate", "bounds"], rows)
        + f"\n({first.total_weight:,.0f} items added; {certainty})"
    )


def describe_membership(items: Sequence[str], present: Sequence[bool]) -> str:
    rows = [
        [item, "probably added" if found else "never added"]
        for item, found in zip(items, present, strict=True)
    ]
    return table(["item", "answer"], rows)


def describe_ranks(answers: Sequence[Rank]) -> str:
    rows = [
        [f"{item.value:g}", f"{item.rank:.4g}", f"{item.lower_rank:.4g} to {item.upper_rank:.4g}"]
        for item in answers
    ]
    return table(["value", "rank", "99% range"], rows)

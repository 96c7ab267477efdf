"""Benchmark results: one row per figure, printed as a table and saved as JSON."""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class Row:
    """One figure of Shoal next to its baseline.

    `higher_is_better` tells how to read the ratio (ours / baseline); `goal` is the
    ratio the issue asks for, None for figures only reported.
    """

    suite: str
    name: str
    ours: float
    unit: str
    baseline_name: str = ""
    baseline: float | None = None
    goal: float | None = None
    higher_is_better: bool = True
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.baseline == 0:
            return None
        return self.ours / self.baseline

    @property
    def met(self) -> bool | None:
        ratio = self.ratio
        if self.goal is None or ratio is None:
            return None
        return ratio >= self.goal if self.higher_is_better else ratio <= self.goal


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    # Suites that raised instead of finishing: name -> "ErrorType: message".
    failed: dict[str, str] = field(default_factory=dict)
    # Where suites write files of their own (the latency table and plot): beside the JSON.
    folder: Path = field(default_factory=lambda: Path("reports"))

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        print(f"  {format_row(row)}", flush=True)
        return row

    def fail(self, suite: str, error: BaseException) -> None:
        self.failed[suite] = f"{type(error).__name__}: {error}"
        print(f"  {suite}: FAILED: {self.failed[suite]}", flush=True)

    def missed(self) -> list[Row]:
        """The figures whose goal was not met, in the order they were measured."""
        return [row for row in self.rows if row.met is False]

    def missed_goals(self) -> str:
        """The missed goals, one a line with the ratio next to the goal and the row's note
        (the measured reason, where a suite knows it); printed after the table."""
        missed = self.missed()
        if not missed:
            return "all goals met"
        lines = [f"{len(missed)} goal(s) not met:"]
        for row in missed:
            sign = "≥" if row.higher_is_better else "≤"
            reason = f" ({row.note})" if row.note else ""
            lines.append(
                f"  MISSED {row.suite}/{row.name}: {row.ratio:.2f}x, goal {sign}{row.goal}x{reason}"
            )
        return "\n".join(lines)

    def table(self, previous: Mapping[tuple[str, str], float] | None = None) -> str:
        """The figures as one table; with ``previous`` (see ``previous_figures``) a column
        shows each figure of the last comparable run and the change since."""
        headers = ["suite", "figure", "shoal", "baseline", "base fig.", "ratio", "goal", "met"]
        if previous is not None:
            headers.append("last run")
        lines = []
        for row in self.rows:
            line = [
                row.suite,
                row.name,
                f"{_number(row.ours)} {row.unit}",
                row.baseline_name or "-",
                "-" if row.baseline is None else f"{_number(row.baseline)} {row.unit}",
                "-" if row.ratio is None else f"{row.ratio:.2f}x",
                "-"
                if row.goal is None
                else ("≥" if row.higher_is_better else "≤") + f"{row.goal}x",
                {True: "yes", False: "NO", None: "-"}[row.met],
            ]
            if previous is not None:
                line.append(_change(previous.get((row.suite, row.name)), row.ours))
            lines.append(line)
        widths = [max([len(h), *(len(line[i]) for line in lines)]) for i, h in enumerate(headers)]
        out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
        out.append("  ".join("-" * w for w in widths))
        out.extend(
            "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines
        )
        out.extend(f"{suite}: FAILED: {reason}" for suite, reason in self.failed.items())
        return "\n".join(out)

    def save(self, path: Path, *, scale: str = "full", suites: Sequence[str] = ()) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        document = {
            "started": self.started,
            "machine": {"python": platform.python_version(), "node": platform.node()},
            "scale": scale,
            "quick": scale == "quick",
            "suites": list(suites),
            "failed_suites": self.failed,
            "rows": [{**asdict(row), "ratio": row.ratio, "met": row.met} for row in self.rows],
            "missed_goals": [
                {
                    "suite": row.suite,
                    "name": row.name,
                    "ratio": row.ratio,
                    "goal": row.goal,
                    "higher_is_better": row.higher_is_better,
                    "note": row.note,
                }
                for row in self.missed()
            ],
        }
        path.write_text(json.dumps(document, indent=2))


def previous_figures(path: Path, *, scale: str) -> dict[tuple[str, str], float] | None:
    """Our figures of the run saved at ``path``, when it was of the same scale (tiny, quick
    and full figures are not comparable); None when there is none to compare with."""
    try:
        document = json.loads(path.read_text())
        saved = document.get("scale") or ("quick" if document.get("quick") else "full")
        if saved != scale:
            return None
        return {(row["suite"], row["name"]): float(row["ours"]) for row in document["rows"]}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _change(before: float | None, now: float) -> str:
    if before is None:
        return "-"
    if before == 0:
        return _number(before)
    return f"{_number(before)} ({(now - before) / before:+.0%})"


def format_row(row: Row) -> str:
    base = "" if row.baseline is None else f" vs {row.baseline_name} {_number(row.baseline)}"
    ratio = "" if row.ratio is None else f" ({row.ratio:.2f}x)"
    return f"{row.suite}/{row.name}: {_number(row.ours)} {row.unit}{base}{ratio}"


def _number(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"

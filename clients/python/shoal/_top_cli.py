"""`shoal top`: a live view of one coordinator's /metrics, refreshed every second (rich).

shoal top                                  http://127.0.0.1:9464/metrics (or SHOAL_METRICS)
shoal top --metrics HOST:PORT --interval 2
shoal top --once                           one view from two scrapes an interval apart
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import urllib.error
import urllib.request
from typing import Any

from shoal._top_figures import Figures, Samples, figures, parse

DEFAULT_METRICS = "http://127.0.0.1:9464/metrics"
EXIT_FAILURE = 1
NEEDS = "shoal top needs rich and prometheus-client: pip install 'shoal-client[top]'"


def add_parser(commands: Any) -> None:
    top = commands.add_parser("top", help="live view of a coordinator's metrics endpoint")
    top.add_argument(
        "--metrics",
        default=os.environ.get("SHOAL_METRICS", DEFAULT_METRICS),
        help=f"the /metrics URL or host:port (default {DEFAULT_METRICS}, or SHOAL_METRICS)",
    )
    top.add_argument(
        "--interval", type=float, default=1.0, help="seconds between refreshes (default 1)"
    )
    top.add_argument("--once", action="store_true", help="print one view and exit")
    top.set_defaults(offline_handler=command_top)


def metrics_url(text: str) -> str:
    url = text if "://" in text else f"http://{text}"
    scheme, _, rest = url.partition("://")
    return url if "/" in rest else f"{scheme}://{rest}/metrics"


def scrape(url: str, timeout_s: float = 5.0) -> Samples:
    with urllib.request.urlopen(url, timeout=timeout_s) as page:
        return parse(page.read().decode())


def _seconds(value: float) -> str:
    if math.isnan(value):
        return "-"
    if value < 0.001:
        return f"{value * 1_000_000:.0f}us"
    if value < 1:
        return f"{value * 1000:.1f}ms"
    return f"{value:.2f}s"


def _rate(value: float) -> str:
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def _bytes(value: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024:
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    return f"{value:.1f}PiB"


def render(view: Figures, url: str, interval_s: float) -> Any:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    memory = (
        f"{_bytes(view.resident_bytes)} of {_bytes(view.memory_limit_bytes)}"
        if view.memory_limit_bytes
        else _bytes(view.resident_bytes)
    )
    header = Text.assemble(
        ("shoal top ", "bold"),
        f"{url}  every {interval_s:g}s   memory {memory}   fsync p99 {_seconds(view.fsync_p99_s)}",
    )
    calls = Table(title="calls", expand=True, title_justify="left")
    for column in ("method", "calls/s", "errors/s", "p50", "p99", "in flight"):
        calls.add_column(column, justify="left" if column == "method" else "right")
    for row in view.methods[:15]:
        calls.add_row(
            row.method,
            _rate(row.calls_per_s),
            Text(_rate(row.errors_per_s), style="red" if row.errors_per_s else ""),
            _seconds(row.p50_s),
            _seconds(row.p99_s),
            f"{row.in_flight:.0f}",
        )
    transactions = Table(title="transactions", expand=True, title_justify="left")
    for column in ("commits/s", "aborts/s", "commit p99", "in flight", "in doubt", "overdue"):
        transactions.add_column(column, justify="right")
    overdue = view.in_doubt_overdue_s
    transactions.add_row(
        ", ".join(f"{kind} {_rate(value)}" for kind, value in sorted(view.commits_per_s.items()))
        or "0",
        ", ".join(f"{why} {_rate(value)}" for why, value in sorted(view.aborts_per_s.items()))
        or "0",
        _seconds(view.commit_p99_s),
        f"{view.in_flight:.0f}",
        Text(f"{view.in_doubt:.0f}", style="yellow" if view.in_doubt else ""),
        Text(_seconds(overdue) if overdue else "0", style="red bold" if overdue > 0 else ""),
    )
    parts: list[Any] = [header, calls, transactions]
    if view.lag or view.pipeline_events_per_s:
        pipelines = Table(title="pipelines", expand=True, title_justify="left")
        for column in ("pipeline", "events/s by outcome", "e2e p99", "lag by topic[partition]"):
            pipelines.add_column(column)
        names = sorted({name for name, _ in view.pipeline_events_per_s} | {k[0] for k in view.lag})
        for name in names:
            events = ", ".join(
                f"{outcome} {_rate(value)}"
                for (pipeline, outcome), value in sorted(view.pipeline_events_per_s.items())
                if pipeline == name and value
            )
            lags = ", ".join(
                f"{topic}[{partition}] {value:,.0f}"
                for (pipeline, topic, partition), value in sorted(view.lag.items())
                if pipeline == name
            )
            pipelines.add_row(
                name, events or "-", _seconds(view.end_to_end_p99_s.get(name, math.nan)), lags
            )
        parts.append(pipelines)
    if view.sql_per_s:
        sql = Text(
            "sql  "
            + ", ".join(
                f"{kind} {_rate(value)}/s" for kind, value in sorted(view.sql_per_s.items())
            )
            + f"   p99 {_seconds(view.sql_p99_s)}"
        )
        parts.append(sql)
    return Group(*parts)


def command_top(arguments: argparse.Namespace) -> int:
    try:
        import prometheus_client  # noqa: F401
        import rich  # noqa: F401
    except ImportError:
        print(f"shoal: {NEEDS}", file=sys.stderr)
        return EXIT_FAILURE
    from rich.console import Console
    from rich.live import Live

    url = metrics_url(arguments.metrics)
    interval_s = max(arguments.interval, 0.1)
    try:
        before, before_at = scrape(url), time.monotonic()
        if arguments.once:
            time.sleep(interval_s)
            after = scrape(url)
            Console().print(
                render(figures(before, after, time.monotonic() - before_at), url, interval_s)
            )
            return 0
        with Live(auto_refresh=False, screen=False) as live:
            while True:
                time.sleep(interval_s)
                after, after_at = scrape(url), time.monotonic()
                live.update(
                    render(figures(before, after, after_at - before_at), url, interval_s),
                    refresh=True,
                )
                before, before_at = after, after_at
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        print(f"shoal: UNAVAILABLE: cannot read {url}: {reason}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 0

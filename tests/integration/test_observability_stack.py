"""The observability stack as an operator starts it: deploy/observability/observability.sh
runs a real Prometheus (Debian's package) on the repository's alerting rules, scraping a
real Shoal server; every alert rule loads healthy and every dashboard query evaluates
without error, the call and commit families with data."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from shoal import Client
from tests.integration.test_observability import free_port, start_in_process
from tests.support.promql import grafana_variables_replaced
from tests.unit.test_observability_deploy import DEPLOY, dashboard_queries

SCRIPT = DEPLOY / "observability" / "observability.sh"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("prometheus") is None,
        reason="Prometheus is not installed (deploy/observability/observability.sh up installs "
        "Debian's package); the parser and promtool tests still ran",
    ),
]


def query(port: int, path: str, **parameters: str) -> Any:
    url = f"http://127.0.0.1:{port}{path}?{urllib.parse.urlencode(parameters)}"
    with urllib.request.urlopen(url, timeout=10) as page:
        return json.loads(page.read())


def test_prometheus_loads_the_rules_scrapes_shoal_and_answers_every_dashboard_query(
    tmp_path: Path,
) -> None:
    running = start_in_process(tmp_path / "data")
    prometheus_port = free_port()
    assert running.metrics_endpoint is not None
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    config["global"]["scrape_interval"] = "1s"
    config["global"]["evaluation_interval"] = "1s"
    config["rule_files"] = [str(DEPLOY / "prometheus" / "alerts.yml")]
    config["scrape_configs"][0]["static_configs"][0]["targets"] = [
        f"127.0.0.1:{running.metrics_endpoint.port}"
    ]
    config_path = tmp_path / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config))
    environment = {
        **os.environ,
        "PROMETHEUS_PORT": str(prometheus_port),
        "PROMETHEUS_CONFIG": str(config_path),
        "SHOAL_CACHE_DIR": str(tmp_path / "cache"),
        "START_TIMEOUT": "60",
    }
    try:
        with Client(f"127.0.0.1:{running.port}") as client:
            client.create_map("stacked", schema={"v": "int"})
            for index in range(20):
                client.put("stacked", f"k{index}", {"v": index})
            client.sql("SELECT sum(v) AS total FROM stacked").fetchall()
        started = subprocess.run(
            [str(SCRIPT), "up"],
            env=environment,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert started.returncode == 0, started.stderr
        deadline = time.monotonic() + 60
        while True:
            up = query(prometheus_port, "/api/v1/query", query='up{job="shoal"}')["data"]["result"]
            scraped = query(prometheus_port, "/api/v1/query", query="shoal_rpc_requests_total")[
                "data"
            ]["result"]
            if up and up[0]["value"][1] == "1" and scraped:
                break
            assert time.monotonic() < deadline, (up, scraped)
            time.sleep(0.5)
        rules = [
            rule
            for group in query(prometheus_port, "/api/v1/rules")["data"]["groups"]
            for rule in group["rules"]
        ]
        assert len(rules) == 8
        assert {rule["health"] for rule in rules} <= {"ok", "unknown"}, rules
        # A few scrapes for the rates over [1m] windows to have two points.
        time.sleep(3)
        answered_with_data = set()
        for where, expression in dashboard_queries():
            answer = query(
                prometheus_port, "/api/v1/query", query=grafana_variables_replaced(expression)
            )
            assert answer["status"] == "success", (where, expression, answer)
            if answer["data"]["result"]:
                answered_with_data.add(where.split(": ", 1)[1])
        assert {
            "Calls per second by method",
            "Latency p99 by method",
            "Commits per second by kind",
            "Entries per map",
            "Resident memory and limit",
        } <= answered_with_data
    finally:
        subprocess.run(
            [str(SCRIPT), "down"],
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        running.stop(5.0)

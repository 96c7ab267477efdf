"""deploy/grafana, deploy/prometheus and deploy/observability hold to what Shoal exports:
every dashboard query and alert expression names only metrics a node exports (expressions
tokenized, files parsed as JSON and YAML), promtool accepts the rules, the configuration
and every dashboard query, and the README has a runbook line for every alert."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from coordinator.memory import MemoryKeeper
from coordinator.observability.rpc import RpcTelemetry
from coordinator.observability.wiring import instrument
from tests.support.pipelines import open_node
from tests.support.promql import grafana_variables_replaced, label_values_metric, metric_names

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DASHBOARDS = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))
# Series Prometheus makes itself for every target.
PROMETHEUS_SERIES = {"up"}
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """The sample names a coordinator exports, from its registry's families."""

    class NoReplays:
        def statuses(self) -> list[Any]:
            return []

    class NoSandboxes:
        def list(self) -> list[Any]:
            return []

    node = open_node(tmp_path_factory.mktemp("exported"))
    try:
        instrumentation = instrument(node)
        instrumentation.watch_replays(NoReplays())
        instrumentation.watch_sandboxes(NoSandboxes())
        RpcTelemetry(node.metrics)
        MemoryKeeper(node.metrics)
        names: set[str] = set()
        for family in node.metrics.registry.collect():
            names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
        instrumentation.close()
        return names
    finally:
        node.close()


def dashboard_queries() -> Iterator[tuple[str, str]]:
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                yield f"{path.name}: {panel['title']}", target["expr"]


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_the_five_dashboards_exist_with_unique_uids() -> None:
    titles = {json.loads(path.read_text())["title"] for path in DASHBOARDS}
    assert titles == {
        "Shoal / Overview",
        "Shoal / Transactions",
        "Shoal / Pipelines",
        "Shoal / SQL",
        "Shoal / Sketch accuracy",
    }
    uids = [json.loads(path.read_text())["uid"] for path in DASHBOARDS]
    assert len(set(uids)) == len(uids)


def test_every_dashboard_query_names_exported_metrics(exported: set[str]) -> None:
    unknown = {
        (where, name)
        for where, expression in dashboard_queries()
        for name in metric_names(expression)
        if name not in exported
    }
    assert unknown == set()
    for path in DASHBOARDS:
        for variable in json.loads(path.read_text())["templating"]["list"]:
            assert label_values_metric(variable["query"]["query"]) in exported


def family_of(name: str) -> str:
    return name.removesuffix("_bucket").removesuffix("_sum").removesuffix("_count")


def test_every_exported_family_is_on_a_dashboard_or_an_alert(exported: set[str]) -> None:
    shown = {name for _, expression in dashboard_queries() for name in metric_names(expression)}
    shown |= {name for rule in alert_rules() for name in metric_names(rule["expr"])}
    shown_families = {family_of(name) for name in shown}
    missing = {name for name in exported if family_of(name) not in shown_families}
    # The peak resident size is for ad-hoc queries (it only grows).
    assert missing <= {"shoal_process_resident_peak_bytes"}


def test_every_alert_names_exported_metrics_and_has_a_runbook_line(exported: set[str]) -> None:
    rules = alert_rules()
    names = {rule["alert"] for rule in rules}
    assert names >= {
        "ShoalHighErrorRate",
        "ShoalHighLatency",
        "ShoalPipelineLagGrowing",
        "ShoalInDoubtTransactionPastLease",
        "ShoalSketchErrorOverBound",
        "ShoalSlowFsync",
        "ShoalMemoryNearLimit",
    }
    readme = (ROOT / "README.md").read_text()
    alerts_section = readme.split("### Alerts", 1)[1].split("\n## ", 1)[0]
    for rule in rules:
        assert metric_names(rule["expr"]) <= exported | PROMETHEUS_SERIES, rule["alert"]
        assert rule["annotations"]["runbook"] == f"README.md#alerts: {rule['alert']}"
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert f"**{rule['alert']}**" in alerts_section, rule["alert"]


def test_prometheus_scrapes_shoal_and_loads_the_rules() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "shoal" and job["metrics_path"] == "/metrics"
    assert job["static_configs"][0]["targets"] == ["127.0.0.1:9464"]


def test_grafana_provisioning_and_compose_point_at_the_files() -> None:
    compose = yaml.safe_load((DEPLOY / "observability" / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"prometheus", "grafana", "jaeger"}
    here = DEPLOY / "observability"
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            assert (here / source).exists(), volume
    provider = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "dashboards" / "shoal.yml").read_text()
    )["providers"][0]
    mounted = {
        volume.split(":")[1]: volume.split(":")[0] for volume in services["grafana"]["volumes"]
    }
    assert (here / mounted[provider["options"]["path"]]).resolve() == (
        DEPLOY / "grafana" / "dashboards"
    ).resolve()
    sources = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"]
    used = {
        target["datasource"]["uid"]
        for path in DASHBOARDS
        for panel in json.loads(path.read_text())["panels"]
        for target in panel.get("targets", [])
    }
    assert used <= {source["uid"] for source in sources}


PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool is not installed (apt-get install prometheus, or "
    "deploy/observability/observability.sh up); the parser tests above still ran",
)


def promtool(*arguments: str | Path) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *map(str, arguments)], capture_output=True, text=True, timeout=60, check=False
    )


@needs_promtool
def test_promtool_accepts_the_rules_and_the_configuration() -> None:
    checked = promtool("check", "rules", DEPLOY / "prometheus" / "alerts.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    checked = promtool("check", "config", DEPLOY / "prometheus" / "prometheus.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr


@needs_promtool
def test_promtool_parses_every_dashboard_query(tmp_path: Path) -> None:
    """Each query as a recording rule: promtool parses it with Prometheus's own parser."""
    rules = [
        {"record": f"shoal:dashboard_query:{index}", "expr": grafana_variables_replaced(expr)}
        for index, (_, expr) in enumerate(dashboard_queries())
    ]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    checked = promtool("check", "rules", path)
    assert checked.returncode == 0, checked.stdout + checked.stderr


@needs_promtool
def test_the_alerts_fire_on_the_series_they_watch(tmp_path: Path) -> None:
    """promtool's rule unit tests: synthetic series that should page do."""
    (tmp_path / "alerts.yml").write_text((DEPLOY / "prometheus" / "alerts.yml").read_text())
    tests = {
        "rule_files": ["alerts.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {
                        "series": 'shoal_transactions_in_doubt_overdue_seconds{instance="a"}',
                        "values": "0 0 45x10",
                    },
                    {
                        "series": 'shoal_process_resident_bytes{instance="a"}',
                        "values": "95x10",
                    },
                    {
                        "series": 'shoal_process_memory_limit_bytes{instance="a"}',
                        "values": "100x10",
                    },
                    {
                        "series": 'shoal_rpc_requests_total{instance="a"}',
                        "values": "0+100x20",
                    },
                    {
                        "series": 'shoal_rpc_errors_total{instance="a",code="INTERNAL"}',
                        "values": "0+20x20",
                    },
                    {
                        "series": 'shoal_rpc_errors_total{instance="a",code="ABORTED"}',
                        "values": "0+50x20",
                    },
                ],
                "alert_rule_test": [
                    {
                        "eval_time": "6m",
                        "alertname": "ShoalInDoubtTransactionPastLease",
                        "exp_alerts": [
                            {
                                "exp_labels": {"instance": "a", "severity": "critical"},
                                "exp_annotations": {
                                    "summary": "a: a transaction is still in doubt 45s after "
                                    "its lease",
                                    "runbook": "README.md#alerts: ShoalInDoubtTransactionPastLease",
                                },
                            }
                        ],
                    },
                    {
                        "eval_time": "7m",
                        "alertname": "ShoalMemoryNearLimit",
                        "exp_alerts": [
                            {
                                "exp_labels": {"instance": "a", "severity": "critical"},
                                "exp_annotations": {
                                    "summary": "a uses 95% of its memory limit",
                                    "runbook": "README.md#alerts: ShoalMemoryNearLimit",
                                },
                            }
                        ],
                    },
                    {
                        # 20% of calls INTERNAL; the ABORTED conflicts do not count.
                        "eval_time": "12m",
                        "alertname": "ShoalHighErrorRate",
                        "exp_alerts": [
                            {
                                "exp_labels": {"instance": "a", "severity": "critical"},
                                "exp_annotations": {
                                    "summary": "a: 20% of calls end with a server error",
                                    "runbook": "README.md#alerts: ShoalHighErrorRate",
                                },
                            }
                        ],
                    },
                ],
            }
        ],
    }
    path = tmp_path / "alerts-test.yml"
    path.write_text(yaml.safe_dump(tests))
    checked = promtool("test", "rules", path)
    assert checked.returncode == 0, checked.stdout + checked.stderr

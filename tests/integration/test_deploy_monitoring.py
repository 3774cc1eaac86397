"""The monitoring files under ``deploy/``: promtool accepts them; they name only real metrics;
the documented metric catalogue (docs/monitoring.md) matches what the service registers."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY
from prometheus_client.metrics import MetricWrapperBase

import cardiogate.metrics  # registers every collector

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS = REPO / "deploy" / "prometheus"
DASHBOARD = REPO / "deploy" / "grafana" / "cardiogate.json"
CATALOGUE = REPO / "docs" / "monitoring.md"
METRIC_NAME = re.compile(r"cardiogate_[a-z_]+")
SAMPLE_SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "info": ("_info",),
    "gauge": ("",),
}


def promtool() -> str:
    """The promtool executable; skips without it, fails under CI (.ci/run installs it)."""
    exe = shutil.which("promtool")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is not installed: .ci/run installs Debian's prometheus package")
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    return exe


def run_promtool(*args: str) -> str:
    proc = subprocess.run(
        [promtool(), *args], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    return output


def test_alert_rules_are_valid() -> None:
    assert "SUCCESS" in run_promtool("check", "rules", "deploy/prometheus/alerts.yml")


def test_alert_rules_pass_their_unit_tests() -> None:
    assert "SUCCESS" in run_promtool("test", "rules", "deploy/prometheus/alerts_test.yml")


def test_prometheus_config_is_valid() -> None:
    assert "SUCCESS" in run_promtool("check", "config", "deploy/prometheus/prometheus.yml")


def test_every_alert_has_a_unit_test() -> None:
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    tests = yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())
    firing = {
        case["alertname"]
        for t in tests["tests"]
        for case in t["alert_rule_test"]
        if case.get("exp_alerts")
    }
    quiet = {
        case["alertname"]
        for t in tests["tests"]
        for case in t["alert_rule_test"]
        if not case.get("exp_alerts")
    }
    assert alerts - firing == set(), "alerts never tested firing"
    assert alerts - quiet == set(), "alerts never tested quiet"


def registered_sample_names() -> set[str]:
    """Every sample name the service's collectors can expose."""
    names: set[str] = set()
    for family in REGISTRY.collect():
        if family.name.startswith("cardiogate_"):
            names.update(family.name + s for s in SAMPLE_SUFFIXES.get(family.type, ("",)))
    return names


def alert_expressions() -> Iterator[str]:
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            yield rule["expr"]


def dashboard_expressions(node: Any) -> Iterator[str]:
    """Every query in the dashboard: panel targets and template variables."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("expr", "definition") and isinstance(value, str):
                yield value
            else:
                yield from dashboard_expressions(value)
    elif isinstance(node, list):
        for item in node:
            yield from dashboard_expressions(item)


@pytest.mark.parametrize("source", ["alerts", "dashboard"])
def test_only_registered_metrics_are_used(source: str) -> None:
    if source == "alerts":
        exprs = list(alert_expressions())
    else:
        exprs = list(dashboard_expressions(json.loads(DASHBOARD.read_text())))
    used = {name for expr in exprs for name in METRIC_NAME.findall(expr)}
    assert used, f"no cardiogate metric found in the {source}"
    assert used - registered_sample_names() == set()


def test_dashboard_is_importable() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "cardiogate-overview"
    assert dashboard["schemaVersion"] >= 39
    assert [i["name"] for i in dashboard["__inputs"]] == ["DS_PROMETHEUS"]
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    for panel in panels:
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
        assert panel["fieldConfig"]["defaults"].get("unit"), panel["title"]


def dashboard_panel_queries() -> list[str]:
    """The PromQL of every panel target, with Grafana's variables filled in."""
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    fill = {"$__rate_interval": "5m", "$job": ".*", "$instance": ".*"}
    for variable, value in fill.items():
        queries = [q.replace(variable, value) for q in queries]
    return queries


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    rules = [
        {"record": f"dashboard:panel_query_{i}:test", "expr": q}
        for i, q in enumerate(dashboard_panel_queries())
    ]
    path = tmp_path / "dashboard_queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    assert "SUCCESS" in run_promtool("check", "rules", str(path))


def test_dashboard_shows_readiness_depth_turnaround_inference_and_delivery() -> None:
    used = {name for q in dashboard_panel_queries() for name in METRIC_NAME.findall(q)}
    assert {
        "cardiogate_ready",
        "cardiogate_jobs_by_state",
        "cardiogate_job_turnaround_seconds_bucket",
        "cardiogate_inference_seconds_bucket",
        "cardiogate_delivery_objects_total",
    } <= used


CATALOGUE_ROW = re.compile(r"^\| `(cardiogate_[a-z_]+)` \| ([a-z]+) \|([^|]*)\|", re.MULTILINE)
EXPOSED_SUFFIX = {"counter": "_total", "info": "_info"}
Catalogue = dict[str, tuple[str, frozenset[str]]]


def documented_metrics() -> Catalogue:
    """The documented metric catalogue (docs/monitoring.md): exposed name -> (type, label
    names)."""
    text = CATALOGUE.read_text()
    section = text[text.index("## Metric catalogue") :]
    section = section[: section.index("\n## ")]
    rows: Catalogue = {}
    for name, kind, labels in CATALOGUE_ROW.findall(section):
        assert name not in rows, f"{name} is in the catalogue twice"
        rows[name] = (kind, frozenset(re.findall(r"`([a-z_]+)`", labels)))
    return rows


def registered_metrics() -> Catalogue:
    """Every ``cardiogate_`` family in the default registry: exposed name -> (type, label
    names). Label names come from the metric objects in ``cardiogate.metrics`` (prometheus
    client keeps them in ``_labelnames``; families without samples yet show none)."""
    sources: dict[str, Any] = {
        m._name: m for m in vars(cardiogate.metrics).values() if isinstance(m, MetricWrapperBase)
    }
    sources[cardiogate.metrics.JOBS_BY_STATE.name] = cardiogate.metrics.JOBS_BY_STATE
    metrics: Catalogue = {}
    for family in REGISTRY.collect():
        if not family.name.startswith("cardiogate_"):
            continue
        assert family.name in sources, f"{family.name} is not defined in cardiogate.metrics"
        source = sources[family.name]
        labels = set(getattr(source, "labelnames", None) or source._labelnames)
        if family.type == "info":
            labels |= {key for sample in family.samples for key in sample.labels}
        metrics[family.name + EXPOSED_SUFFIX.get(family.type, "")] = (
            family.type,
            frozenset(labels),
        )
    return metrics


def test_the_readme_catalogue_lists_every_metric_with_its_type_and_labels() -> None:
    documented = documented_metrics()
    assert len(documented) >= 20
    assert documented == registered_metrics()

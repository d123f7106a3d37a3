"""deploy/ ships alert rules and a Grafana dashboard built on the golden queries of
docs/operations.md: every metric they name must be one /metrics exports."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.test import Client

ROOT = Path(__file__).resolve().parents[2]
METRIC = re.compile(r"\bactiondesk_[a-z_]+\b")


def _exported(settings: Any) -> set[str]:
    settings.METRICS_TOKEN = "scrape-token"
    response = Client().get("/metrics", headers={"Authorization": "Bearer scrape-token"})
    assert response.status_code == 200
    names: set[str] = set()
    for line in response.content.decode().splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            names.add(name)
            if kind == "counter":
                names.add(f"{name}_total")
            if kind == "histogram":
                names.update(f"{name}_{part}" for part in ("bucket", "count", "sum"))
    return names


def _alert_expressions() -> list[str]:
    rules = yaml.safe_load((ROOT / "deploy/prometheus-alerts.yml").read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def _dashboard_expressions() -> list[str]:
    dashboard = json.loads((ROOT / "deploy/grafana-dashboard.json").read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


@pytest.mark.django_db
@pytest.mark.parametrize("source", [_alert_expressions, _dashboard_expressions])
def test_every_metric_named_in_deploy_is_exported(settings: Any, source: Any) -> None:
    exported = _exported(settings)
    expressions = source()
    named = {name for expr in expressions for name in METRIC.findall(expr)}
    assert expressions and named
    assert named <= exported, sorted(named - exported)


def test_the_golden_queries_in_the_docs_are_the_shipped_ones() -> None:
    docs = (ROOT / "docs/operations.md").read_text()
    documented = set(METRIC.findall(docs.split("### Golden queries", 1)[1]))
    shipped = {
        n for e in _alert_expressions() + _dashboard_expressions() for n in METRIC.findall(e)
    }
    assert shipped <= documented, sorted(shipped - documented)

"""The example alert rules and Grafana dashboard in docs/: valid for promtool, firing as
documented, and reading only series /metrics exports."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "docs" / "prometheus-alerts.yml"
RULES_TEST = Path(__file__).with_name("prometheus-alerts.test.yml")
DASHBOARD = ROOT / "docs" / "grafana-dashboard.json"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (Debian: apt-get install prometheus; `make services` does)")


@needs_promtool
def test_rules_pass_promtool_check():
    result = subprocess.run([PROMTOOL, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 9 rules found" in result.stdout


@needs_promtool
def test_rules_fire_as_their_unit_tests_say():
    result = subprocess.run([PROMTOOL, "test", "rules", RULES_TEST.name], cwd=RULES_TEST.parent, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.django_db
def test_rules_and_dashboard_read_only_exported_series(client, settings):
    settings.METRICS_TOKEN = "t"
    scraped = client.get("/metrics", HTTP_AUTHORIZATION="Bearer t").content.decode()
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"], "gauge": [""]}
    exported = {
        family.name + suffix
        for family in text_string_to_metric_families(scraped)
        for suffix in suffixes[family.type]
    }

    rules = yaml.safe_load(RULES.read_text())["groups"][0]["rules"]
    expressions = [rule["expr"] for rule in rules]
    dashboard = json.loads(DASHBOARD.read_text())
    expressions += [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]

    used = {name for expr in expressions for name in re.findall(r"\breportdesk_[a-z_]+", expr)}
    assert used, "no reportdesk series found in the expressions"
    assert used - exported == set()
    # every rule can page someone sensibly
    assert all(rule["labels"]["severity"] in {"page", "warning", "info"} and rule["annotations"]["summary"] for rule in rules)

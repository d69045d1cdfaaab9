"""promtool (Debian package `prometheus`), installed with apt-get where missing; the queries of the operator kit."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import yaml

from wine_quality.settings import PROJECT_ROOT

KIT = PROJECT_ROOT / "deploy" / "monitoring"
ALERTS, ALERT_TESTS, DASHBOARD = KIT / "alerts.yml", KIT / "alerts.test.yml", KIT / "grafana" / "wine-quality.json"
PACKAGE = "prometheus"
# Grafana's variables, as Prometheus would see them once Grafana has filled them in
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$model": ".*", "$tag": ".*"}
# what a query names that is not a metric: functions and aggregations are followed by "(", these are not
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset"}


class PromtoolUnavailable(RuntimeError):
    """promtool is not here and cannot be installed on this machine."""


def ensure_promtool() -> str:
    """The promtool binary, from the distribution's `prometheus` package (apt-get, as root) when missing."""
    found = shutil.which("promtool")
    if found:
        return found
    if not shutil.which("apt-get") or os.geteuid() != 0:
        raise PromtoolUnavailable(f"no promtool, and installing it needs root and apt-get: apt-get install {PACKAGE}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", PACKAGE]
    done = subprocess.run(install, env=env, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:  # a fresh machine has no package lists yet
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, timeout=900)
        done = subprocess.run(install, env=env, capture_output=True, text=True, timeout=900)
    found = shutil.which("promtool")
    if not found:
        raise PromtoolUnavailable(f"apt-get install {PACKAGE} failed: {done.stderr.strip()[-500:]}")
    return found


def promtool(*args: str, cwd: Path = KIT) -> subprocess.CompletedProcess[str]:
    """Run promtool; its output (stdout and stderr) in the result."""
    return subprocess.run([ensure_promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def rule_queries() -> dict[str, str]:
    """Alert name -> its expression, from alerts.yml."""
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return {rule["alert"]: rule["expr"] for group in groups for rule in group["rules"]}


def dashboard_queries() -> dict[str, str]:
    """Panel title (and query letter) -> its query, Grafana's variables filled in; the variables' own queries too."""
    board = json.loads(DASHBOARD.read_text())
    queries = {
        f"{panel['title']} {target['refId']}": target["expr"]
        for panel in board["panels"]
        for target in panel.get("targets", [])
    }
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":  # label_values(metric, label): the metric must exist
            metric = re.fullmatch(r"label_values\((\w+),\s*\w+\)", variable["definition"])
            assert metric, variable["definition"]
            queries[f"variable {variable['name']}"] = metric.group(1)
    for name, value in GRAFANA_VARIABLES.items():
        queries = {title: q.replace(name, value) for title, q in queries.items()}
    return queries


def metric_names(query: str) -> set[str]:
    """The metric names a PromQL query reads (not its functions, label names, label values or durations)."""
    query = re.sub(r'"(?:[^"\\]|\\.)*"', '""', query)  # label values
    query = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", query)  # label matchers, ranges
    query = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", query)  # label lists
    names = re.findall(r"(?<![\w.])([A-Za-z_:][A-Za-z0-9_:]*)(?![\w:]|\s*\()", query)
    return {n for n in names if n not in KEYWORDS}


def exported_names(metrics_text: str) -> set[str]:
    """The sample names in a Prometheus text exposition (histograms' _bucket, _sum and _count included)."""
    return {re.split(r"[{\s]", line, maxsplit=1)[0] for line in metrics_text.splitlines() if line and line[0] != "#"}

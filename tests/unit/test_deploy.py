"""docker-compose.yml cannot run here (no Docker engine): check it against the CLI and settings."""

from __future__ import annotations

import json
import re
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import typer.main
import yaml
from prometheus_client import REGISTRY
from pydantic_settings import BaseSettings

from dealstream.broker.local.config import LocalBrokerSettings
from dealstream.broker.settings import KafkaSettings
from dealstream.cli.main import app
from dealstream.connectors.erp_sql.connector import ErpSqlSettings
from dealstream.connectors.pii import PiiSettings
from dealstream.connectors.pos_file.connector import PosFileSettings
from dealstream.connectors.pos_http.connector import PosHttpSettings
from dealstream.connectors.sdk import metrics as _connector_metrics  # noqa: F401 (registers)
from dealstream.connectors.sdk.settings import load_settings
from dealstream.schemas.registry import SchemaRegistrySettings
from dealstream.sinks.clickhouse import metrics as _sink_metrics  # noqa: F401 (registers)
from dealstream.sinks.clickhouse.migrate import MIGRATIONS_DIR
from dealstream.sinks.clickhouse.settings import ClickHouseSettings
from dealstream.sinks.dashboard.settings import DashboardSettings
from dealstream.sinks.kafka import alerts as _alert_metrics  # noqa: F401 (registers)
from dealstream.streams import metrics as _stream_metrics  # noqa: F401 (registers)
from dealstream.streams.compliance import ComplianceSettings
from dealstream.streams.forecast import ForecastSettings
from dealstream.streams.settings import WorkerSettings
from dealstream.streams.state_signing import StateSettings
from dealstream.streams.worker import default_pipelines

ROOT = Path(__file__).resolve().parents[2]
SETTINGS: list[type[BaseSettings]] = [
    KafkaSettings, ClickHouseSettings, WorkerSettings, PiiSettings, PosFileSettings,
    LocalBrokerSettings, SchemaRegistrySettings, ComplianceSettings, ForecastSettings,
    StateSettings, DashboardSettings, PosHttpSettings,
]  # fmt: skip
DEPLOY = ROOT / "deploy"


def known_variables() -> set[str]:
    names = set()
    for settings in SETTINGS:
        prefix = str(settings.model_config.get("env_prefix", ""))
        names |= {(prefix + field).upper() for field in settings.model_fields}
    return names


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_every_dealstream_variable_in_compose_is_a_real_setting() -> None:
    known = known_variables()
    for name, service in compose()["services"].items():
        for variable in service.get("environment", {}):
            if variable.startswith("DEALSTREAM_"):
                assert variable in known, f"{name}: {variable} is not read by any settings class"


def test_every_dealstream_service_command_exists_in_the_cli() -> None:
    command: Any = typer.main.get_command(app)  # typer's own click Group
    built = [s for s in compose()["services"].values() if s.get("build") == "."]
    assert built, "the stack runs dealstream itself"
    for service in built:
        words = service["command"]
        node = command
        for word in words:
            if not hasattr(node, "commands"):
                break
            assert word in node.commands, f"`dealstream {' '.join(words)}`: no command {word!r}"
            node = node.commands[word]


def test_the_dockerfile_copies_every_layer() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for layer in ("broker", "connectors", "models", "schemas", "sinks", "streams", "dealstream"):
        assert f"COPY {layer} ./{layer}" in dockerfile


# --- monitoring and Kubernetes (deploy/prometheus, deploy/grafana, deploy/k8s) ---


def k8s_documents() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d and "metadata" in d]
    return docs


def containers() -> list[dict[str, Any]]:
    found = []
    for doc in k8s_documents():
        if doc["kind"] in ("Deployment", "StatefulSet", "Job"):
            found += doc["spec"]["template"]["spec"]["containers"]
    return found


def exported_metric_names() -> set[str]:
    """Every sample name our registered collectors can expose (suffixes per metric type)."""
    suffixes = {"counter": ("_total", "_created"), "gauge": ("",),
                "histogram": ("_bucket", "_sum", "_count", "_created")}  # fmt: skip
    names = set()
    for family in REGISTRY.collect():
        if family.name.startswith("dealstream_"):
            names |= {family.name + s for s in suffixes.get(family.type, ("",))}
    return names


def metric_names_in(expression: str) -> set[str]:
    return set(re.findall(r"\bdealstream_[a-z0-9_]+", expression))


def test_every_deploy_yaml_parses() -> None:
    files = sorted(DEPLOY.rglob("*.yml")) + sorted(DEPLOY.rglob("*.yaml"))
    assert len(files) >= 10
    for path in files:
        assert list(yaml.safe_load_all(path.read_text())), path


def test_compose_runs_monitoring_from_the_files_in_deploy() -> None:
    services = compose()["services"]
    assert {"prometheus", "grafana", "dashboard"} <= set(services)
    for name in ("prometheus", "grafana"):
        for volume in services[name]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
    assert (
        "grafana-clickhouse-datasource" in services["grafana"]["environment"]["GF_INSTALL_PLUGINS"]
    )


def test_alert_rules_use_metrics_the_code_exports() -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    exported = exported_metric_names()
    names = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    for wanted in ("ConsumerLag", "DeadLetters", "Paused", "CheckpointFailures"):
        assert any(wanted in n for n in names), f"no alert about {wanted}"
    for group in rules["groups"]:
        for rule in group["rules"]:
            used = metric_names_in(rule["expr"])
            assert used <= exported, f"{rule['alert']}: unknown metrics {used - exported}"
    scrape = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert scrape["rule_files"] == ["/etc/prometheus/alerts.yml"]


def test_grafana_dashboard_queries_existing_metrics_and_views() -> None:
    sources = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "datasources.yml").read_text()
    )
    uids = {s["uid"]: s["type"] for s in sources["datasources"]}
    assert uids["clickhouse"] == "grafana-clickhouse-datasource"
    migrations = " ".join(p.read_text() for p in MIGRATIONS_DIR.glob("*.sql"))
    relations = set(re.findall(r"CREATE (?:TABLE|VIEW) IF NOT EXISTS (\w+)", migrations))
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "dealstream.json").read_text())
    exported = exported_metric_names()
    kinds = set()
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            source = target["datasource"]
            assert uids[source["uid"]] == source["type"], panel["title"]
            kinds.add(source["uid"])
            if "expr" in target:
                used = metric_names_in(target["expr"])
                assert used and used <= exported, f"{panel['title']}: {used - exported}"
            else:
                read = set(re.findall(r"FROM\s+(\w+)", target["rawSql"]))
                assert read and read <= relations, f"{panel['title']}: {read - relations}"
    assert kinds == {"prometheus", "clickhouse"}


def test_k8s_containers_run_real_commands_with_real_settings() -> None:
    command: Any = typer.main.get_command(app)
    connectors = {e.name for e in entry_points(group="dealstream.connectors")}
    known = known_variables()
    assert len(containers()) >= 3
    for container in containers():
        words = container["args"]
        node = command
        for word in words:
            if word.startswith("-") or not hasattr(node, "commands"):
                break
            assert word in node.commands, f"{container['name']}: no command {word!r}"
            node = node.commands[word]
        if words[:2] == ["connectors", "run"]:
            assert words[2] in connectors, f"{container['name']}: no connector {words[2]!r}"
        for variable in container.get("env", []):
            assert variable["name"] in known, f"{container['name']}: {variable['name']}"
    for doc in k8s_documents():
        if doc["kind"] in ("ConfigMap", "Secret"):
            data = doc.get("data") or doc.get("stringData") or {}
            unknown = {k for k in data if k.startswith("DEALSTREAM_")} - known
            assert not unknown, f"{doc['metadata']['name']}: {unknown}"
    secret = yaml.safe_load((DEPLOY / "k8s" / "secret.example.yaml").read_text())
    assert set(secret["stringData"]) <= known


def test_k8s_workers_scale_by_partitions_and_probe_the_worker_endpoints() -> None:
    worker = next(d for d in k8s_documents() if d["metadata"]["name"] == "dealstream-worker")
    spec = worker["spec"]["template"]["spec"]["containers"][0]
    assert worker["spec"]["replicas"] >= 1
    assert spec["livenessProbe"]["httpGet"]["path"] == "/health"
    assert spec["readinessProbe"]["httpGet"]["path"] == "/ready"
    kustomize = yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())
    for resource in kustomize["resources"]:
        assert (DEPLOY / "k8s" / resource).exists()
    config = yaml.safe_load((DEPLOY / "k8s" / "configmap.yaml").read_text())["data"]
    assert (
        ClickHouseSettings(url=config["DEALSTREAM_CLICKHOUSE_URL"])
        .model_copy(update={"cluster": config["DEALSTREAM_CLICKHOUSE_CLUSTER"]})
        .cluster
        == "dealstream"
    )  # the migrations' cluster option (tests/unit/sinks/test_cluster_ddl.py)


def test_compose_runs_connectors_from_real_config_files() -> None:
    services = compose()["services"]
    connectors = {n: s for n, s in services.items() if s.get("command", [None])[0] == "connectors"}
    assert {"pos-http", "erp-sql"} <= set(connectors)
    erp = connectors["erp-sql"]
    mounted = {v.split(":")[1]: ROOT / v.split(":")[0] for v in erp["volumes"] if v[0] == "."}
    config = Path(erp["command"][erp["command"].index("--config") + 1])
    settings = load_settings(ErpSqlSettings, mounted[str(config)])
    assert settings.streams == ["orders", "inventory"]


def test_prometheus_scrapes_every_dealstream_process_that_serves_metrics() -> None:
    scraped = {
        target
        for job in yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())[
            "scrape_configs"
        ]
        for static in job["static_configs"]
        for target in static["targets"]
    }
    for name, service in compose()["services"].items():
        if service.get("build") != "." or not service.get("ports"):
            continue
        container_port = str(service["ports"][0]).split(":")[-1]
        assert f"{name}:{container_port}" in scraped, f"Prometheus does not scrape {name}"


def test_k8s_workers_split_the_pipelines_and_the_global_ones_run_alone() -> None:
    def env(name: str) -> dict[str, str]:
        doc = next(d for d in k8s_documents() if d["metadata"]["name"] == name)
        container = doc["spec"]["template"]["spec"]["containers"][0]
        return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}

    scaled, single = env("dealstream-worker"), env("dealstream-worker-global")
    names = {p.name for p in default_pipelines(KafkaSettings())}
    runs = [
        WorkerSettings(pipelines=json.loads(e["DEALSTREAM_WORKER_PIPELINES"])).pipelines
        for e in (scaled, single)
    ]
    assert sorted(runs[0] + runs[1]) == sorted(names), "every pipeline runs exactly once"
    assert set(runs[1]) == {"journeys", "store-tasks", "rep-forecast"}
    global_doc = next(
        d for d in k8s_documents() if d["metadata"]["name"] == "dealstream-worker-global"
    )
    assert global_doc["spec"]["replicas"] == 1
    assert global_doc["spec"]["strategy"]["type"] == "Recreate"
    assert single["DEALSTREAM_WORKER_GROUP_ID"] != WorkerSettings().group_id

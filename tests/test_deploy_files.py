"""The cluster configuration in deploy/ parses, and the dagster.yaml there is a valid
Dagster instance config for the installed Dagster (docs/CLUSTER.md)."""

from __future__ import annotations

from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


def test_every_yaml_file_parses() -> None:
    files = sorted(DEPLOY.rglob("*.yaml"))
    assert {f.name for f in files} >= {"dagster.yaml", "values.yaml", "secrets.example.yaml"}
    for f in files:
        assert list(yaml.safe_load_all(f.read_text(encoding="utf-8"))), f


def test_instance_config_matches_dagster_schema(monkeypatch) -> None:
    from dagster._config import process_config
    from dagster._core.instance.config import dagster_instance_config_schema

    for name in ("DAGSTER_PG_HOST", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD"):
        monkeypatch.setenv(name, "x")  # {env: ...} values resolve when the config is processed
    config = yaml.safe_load((DEPLOY / "k8s" / "dagster.yaml").read_text(encoding="utf-8"))
    result = process_config(dagster_instance_config_schema(), config)
    assert result.success, [e.message for e in result.errors]
    assert config["run_launcher"]["class"] == "K8sRunLauncher"
    assert config["concurrency"]["pools"]["default_limit"] == 1


def test_helm_values_wire_the_k8s_run_launcher_and_the_writer_pool() -> None:
    values = yaml.safe_load((DEPLOY / "k8s" / "values.yaml").read_text(encoding="utf-8"))
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    deployment = values["dagster-user-deployments"]["deployments"][0]
    assert deployment["dagsterApiGrpcArgs"] == ["-m", "orchestration.definitions"]
    assert values["concurrency"]["pools"]["defaultLimit"] == 1


def test_no_secret_values_in_the_examples() -> None:
    docs = list(yaml.safe_load_all((DEPLOY / "k8s" / "secrets.example.yaml").read_text(encoding="utf-8")))
    secret = next(d for d in docs if d["kind"] == "Secret")
    assert all(v.startswith("<placeholder") for v in secret["stringData"].values())

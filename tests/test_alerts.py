"""Failure alerts (selloff/alerts.py, orchestration/alerts.py): a really failing run reaches
the default channel, a line in `$DAGSTER_HOME/alerts.log`."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from selloff.alerts import Alert, AlertChannel, alert_channel
from selloff.settings import settings_from_env


@pytest.mark.slow
def test_a_failed_run_is_one_line_in_the_alert_log(tmp_path: Path) -> None:
    from orchestration.alerts import run_failure_alert
    from orchestration.definitions import build_definitions
    from selloff.sources.demo import export_demo_snapshot

    snap = export_demo_snapshot(tmp_path / "demo", n_securities=12)
    prices = pl.read_parquet(snap / "prices_daily.parquet")
    bad_row = 7
    prices.with_columns(
        pl.when(pl.int_range(pl.len()) == bad_row).then(-5.0).otherwise(pl.col("close"))
        .alias("close")).write_parquet(snap / "prices_daily.parquet")
    defs = build_definitions(settings_from_env({
        "SELLOFF_WAREHOUSE": str(tmp_path / "warehouse" / "selloff.duckdb"),
        "SELLOFF_SOURCE": "snapshot", "SELLOFF_SNAPSHOT_DIR": str(snap)}))
    home = tmp_path / "dagster_home"
    home.mkdir()
    instance = dg.DagsterInstance.local_temp(str(home))
    result = defs.resolve_job_def("extract_only").execute_in_process(instance=instance,
                                                                     raise_on_error=False)
    assert not result.success
    context = dg.build_run_status_sensor_context(
        sensor_name="alert_on_run_failure", dagster_instance=instance,
        dagster_run=result.dagster_run, dagster_event=result.get_run_failure_event(),
        resources={"alerts": defs.resources["alerts"]},
    ).for_run_failure()
    run_failure_alert(context)

    log = home / "alerts.log"
    lines = log.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1, lines
    at, kind, subject, detail, link = lines[0].split("\t")
    assert kind == "run_failure"
    assert subject == f"run {result.run_id[:8]} of job extract_only failed"
    # the landing gate's own words: dataset, row (1-based in the file) and rule
    assert "raw__prices_daily" in detail
    assert f"prices_daily, row {bad_row + 1}: rule 'positive: close'" in detail, detail
    assert link == f"http://127.0.0.1:3000/runs/{result.run_id}"


def test_a_channel_that_fails_is_recorded_and_the_log_line_stays(tmp_path: Path) -> None:
    # Port 9 (discard) on localhost refuses: the e-mail cannot go, the log keeps the alert
    # and says why the e-mail did not.
    channel = AlertChannel(log_path=str(tmp_path / "a.log"), email_to="ops@example.org",
                           smtp_host="127.0.0.1", smtp_port=9)
    reached = channel.deliver(Alert("run_failure", "run x failed", "boom\nline two"), tmp_path)
    assert reached == [f"log:{tmp_path / 'a.log'}"]
    lines = (tmp_path / "a.log").read_text(encoding="utf-8").splitlines()
    assert lines[0].split("\t")[1:4] == ["run_failure", "run x failed", "boom line two"]
    assert lines[1].split("\t")[1:3] == ["delivery_failed", "email: run x failed"]


def test_slack_and_email_are_configured_by_env_vars_only_when_set() -> None:
    plain = alert_channel(settings_from_env({}))
    assert (plain.slack_channel, plain.email_to, plain.log_path) == (None, None, None)
    settings = settings_from_env({"SELLOFF_ALERT_SLACK_CHANNEL": "#selloff",
                                  "SELLOFF_ALERT_EMAIL_TO": "ops@example.org",
                                  "SELLOFF_SMTP_USER": "bot", "SELLOFF_SMTP_PORT": "587"})
    defs = dg.Definitions(resources={"alerts": alert_channel(settings)})
    # The secrets stay EnvVars (resolved by Dagster when a sensor uses the resource).
    channel = defs.resources["alerts"]
    assert isinstance(channel.slack_token, dg.EnvVar) and channel.slack_token.env_var_name \
        == "SELLOFF_SLACK_TOKEN"
    assert isinstance(channel.smtp_password, dg.EnvVar)
    assert (channel.smtp_port, channel.smtp_user) == (587, "bot")


@pytest.mark.parametrize("bad", ["", "x"])
def test_bad_smtp_port_names_the_variable(bad: str) -> None:
    if bad == "":
        assert settings_from_env({"SELLOFF_SMTP_PORT": bad}).alerts.smtp_port == 25
        return
    with pytest.raises(ValueError, match="SELLOFF_SMTP_PORT"):
        settings_from_env({"SELLOFF_SMTP_PORT": bad})

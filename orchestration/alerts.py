"""Alert sensors: a failed run, and a freshness check that failed, reach the alert channel
(selloff/alerts.py: `$DAGSTER_HOME/alerts.log`, and Slack or e-mail when configured)."""

import json

import dagster as dg
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from assets.extract import freshness_check_keys
from selloff.alerts import Alert, AlertChannel


def _run_failure_alert(context: dg.RunFailureSensorContext, alerts: AlertChannel) -> Alert:
    run = context.dagster_run
    steps = []
    for ev in context.get_step_failure_events():
        error = ev.step_failure_data.error if ev.step_failure_data else None
        steps.append(f"{ev.step_key}: {error.message.strip() if error else ev.message}")
    detail = "; ".join(steps) or (context.failure_event.message or "run failed")
    where = run.tags.get("selloff/market")
    subject = (f"run {run.run_id[:8]} of job {run.job_name} failed"
               + (f" ({where} {run.tags.get('selloff/window', '')})".rstrip() if where else ""))
    return Alert("run_failure", subject, detail[:2000], link=f"{alerts.ui_url}/runs/{run.run_id}")


@dg.run_failure_sensor(
    name="alert_on_run_failure",
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Every failed run (a schedule's, the automation sensor's, a UI launch, "
    "`selloff run`) becomes one alert: the job, the failed steps and their errors.",
)
def run_failure_alert(context: dg.RunFailureSensorContext, alerts: AlertChannel) -> None:
    alert = _run_failure_alert(context, alerts)
    reached = alerts.deliver(alert, context.instance.root_directory)
    context.log.info(f"alert sent to {', '.join(reached)}: {alert.subject}")


@dg.sensor(
    name="alert_on_stale_market",
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
    description="Each failed evaluation of a market freshness check (raw/*:fresh_<market>) "
    "becomes one alert, with the missing session and the deadline.",
)
def freshness_alert(context: dg.SensorEvaluationContext, alerts: AlertChannel) -> dg.SkipReason:
    # Cursor: per check, the id of the latest evaluation already looked at, so each failed
    # evaluation alerts once and a check that stays red does not repeat every minute.
    seen: dict[str, int] = json.loads(context.cursor) if context.cursor else {}
    latest = context.instance.event_log_storage.get_latest_asset_check_execution_by_key(
        freshness_check_keys())
    sent = []
    for key, record in sorted(latest.items(), key=lambda kv: kv[1].id):
        name = key.to_user_string()
        if record.id <= seen.get(name, 0) or record.status == AssetCheckExecutionRecordStatus.PLANNED:
            continue
        seen[name] = record.id
        if record.status != AssetCheckExecutionRecordStatus.FAILED:
            continue
        data = record.event.dagster_event.asset_check_evaluation_data \
            if record.event and record.event.dagster_event else None
        detail = (data.description if data and data.description else "freshness check failed")
        asset = key.asset_key.to_user_string()
        alerts.deliver(Alert("freshness", f"{name} failed", detail,
                             link=f"{alerts.ui_url}/assets/{asset}?view=checks"),
                       context.instance.root_directory)
        sent.append(name)
    context.update_cursor(json.dumps(seen, sort_keys=True))
    return dg.SkipReason(f"alerted: {', '.join(sent)}" if sent else "no new failed freshness check")


alert_sensors = [run_failure_alert, freshness_alert]

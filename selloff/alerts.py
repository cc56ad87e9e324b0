"""Where alerts go: a line in a log file always, and Slack or e-mail when configured.

The channel is a Dagster resource (`alerts`), so the UI's launchpad and the sensors show
its fields; secrets (the Slack token, the SMTP password) are `dg.EnvVar`s, read by
Dagster when a sensor uses the resource, never at import and never shown.
"""

from __future__ import annotations

import datetime as dt
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import dagster as dg
from pydantic import Field

from selloff.settings import Settings

ALERT_LOG_NAME = "alerts.log"


@dataclass(frozen=True)
class Alert:
    kind: str  # run_failure | freshness
    subject: str  # one line: what failed
    detail: str  # why (the error, the check's description)
    link: str = ""  # the run or asset in the UI, when known

    def line(self, at: dt.datetime) -> str:
        """One line of the log file: tab-separated, newlines in the detail flattened."""
        fields = [at.isoformat(timespec="seconds"), self.kind, self.subject,
                  " ".join(self.detail.split()), self.link]
        return "\t".join(fields)


class AlertChannel(dg.ConfigurableResource):
    """A log file (default `$DAGSTER_HOME/alerts.log`) and, when set, Slack and e-mail."""

    log_path: str | None = Field(default=None, description="alert log file (default: "
                                 f"<DAGSTER_HOME>/{ALERT_LOG_NAME})")
    slack_channel: str | None = Field(default=None, description="Slack channel, e.g. #selloff "
                                      "(with SELLOFF_SLACK_TOKEN)")
    slack_token: str | None = None
    email_to: str | None = Field(default=None, description="comma-separated recipients")
    email_from: str = Field(default="selloff@localhost")
    smtp_host: str = Field(default="localhost")
    smtp_port: int = Field(default=25)
    smtp_user: str | None = None
    smtp_password: str | None = None
    ui_url: str = Field(default="http://127.0.0.1:3000", description="base URL of the Dagster "
                        "UI, for links in the alerts")

    def log_file(self, dagster_home: str | Path) -> Path:
        return Path(self.log_path) if self.log_path else Path(dagster_home) / ALERT_LOG_NAME

    def deliver(self, alert: Alert, dagster_home: str | Path) -> list[str]:
        """Write the alert's line, then send it where configured. Returns the channels it
        reached; a channel that fails is recorded in the log file too, and does not stop
        the others (the log line is written first, so the alert is never lost)."""
        now = dt.datetime.now(dt.UTC)
        log = self.log_file(dagster_home)
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a", encoding="utf-8") as fh:
            fh.write(alert.line(now) + "\n")
        reached = [f"log:{log}"]
        for name, send in (("slack", self._slack), ("email", self._email)):
            try:
                if send(alert):
                    reached.append(name)
            except Exception as exc:  # noqa: BLE001 - any delivery error is reported, not raised
                with log.open("a", encoding="utf-8") as fh:
                    fh.write(Alert("delivery_failed", f"{name}: {alert.subject}",
                                   f"{type(exc).__name__}: {exc}").line(now) + "\n")
        return reached

    def _text(self, alert: Alert) -> str:
        return f"[selloff] {alert.subject}\n{alert.detail}" + (f"\n{alert.link}" if alert.link else "")

    def _slack(self, alert: Alert) -> bool:
        if not self.slack_channel:
            return False
        if not self.slack_token:
            raise ValueError("slack_channel is set but SELLOFF_SLACK_TOKEN is not")
        from dagster_slack import SlackResource

        SlackResource(token=self.slack_token).get_client().chat_postMessage(
            channel=self.slack_channel, text=self._text(alert))
        return True

    def _email(self, alert: Alert) -> bool:
        if not self.email_to:
            return False
        msg = EmailMessage()
        msg["Subject"] = f"[selloff] {alert.subject}"
        msg["From"] = self.email_from
        msg["To"] = self.email_to
        msg.set_content(self._text(alert))
        with smtplib.SMTP(self.smtp_host, self.smtp_port, timeout=20) as smtp:
            if self.smtp_user:
                smtp.starttls()
                smtp.login(self.smtp_user, self.smtp_password or "")
            smtp.send_message(msg)
        return True


def alert_channel(settings: Settings) -> AlertChannel:
    """The channel from the settings (resolved when the definitions load); the secrets are
    EnvVars only where their channel is configured, so an unset token never fails a run."""
    return AlertChannel(
        log_path=str(settings.alerts.log) if settings.alerts.log else None,
        slack_channel=settings.alerts.slack_channel,
        slack_token=dg.EnvVar("SELLOFF_SLACK_TOKEN") if settings.alerts.slack_channel else None,
        email_to=settings.alerts.email_to,
        email_from=settings.alerts.email_from or "selloff@localhost",
        smtp_host=settings.alerts.smtp_host or "localhost",
        smtp_port=settings.alerts.smtp_port,
        smtp_user=settings.alerts.smtp_user,
        smtp_password=dg.EnvVar("SELLOFF_SMTP_PASSWORD")
        if settings.alerts.email_to and settings.alerts.smtp_user else None,
    )

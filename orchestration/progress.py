"""A Dagster logger that prints one line per finished step, for `selloff run`."""

import logging
import time

import dagster as dg
from rich.console import Console

_EVENTS = {"STEP_SUCCESS": "[green]done[/]", "STEP_FAILURE": "[red]FAILED[/]",
           "STEP_SKIPPED": "[yellow]skipped[/]", "STEP_UP_FOR_RETRY": "[yellow]retrying[/]"}


class _StepProgress(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.console = Console(stderr=True)
        self.started = time.perf_counter()
        self.done = 0

    def emit(self, record: logging.LogRecord) -> None:
        event = getattr(record, "dagster_meta", {}).get("dagster_event")
        if event is None or event.event_type_value not in _EVENTS:
            return
        self.done += event.event_type_value == "STEP_SUCCESS"
        elapsed = time.perf_counter() - self.started
        self.console.print(f"  {elapsed:6.1f}s  {_EVENTS[event.event_type_value]:<8} {event.step_key}",
                           highlight=False)


@dg.logger(description="One line per finished step (used by `selloff run`).")
def step_progress(init_context: dg.InitLoggerContext) -> logging.Logger:
    log = logging.getLogger("selloff.progress")
    log.setLevel(logging.DEBUG)
    log.handlers = [_StepProgress()]
    log.propagate = False
    return log

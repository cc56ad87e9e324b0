"""Declarative automation: marts, analytics and reports follow their inputs."""

import dagster as dg

# Extract assets run on their schedules; everything downstream carries an eager condition
# (set on the analytics assets and, for dbt models, by the translator), and this sensor
# evaluates them.
automation_sensor = dg.AutomationConditionSensorDefinition(
    name="selloff_automation",
    target=dg.AssetSelection.all() - dg.AssetSelection.groups("extract"),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
)

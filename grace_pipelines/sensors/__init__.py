"""Sensors: inbox (file drops and dispatch), consent (grants that release held work),
re-embedding after a model change, SLA escalation, crash recovery, intents, data quality."""

from grace_pipelines.sensors.consent import build_consent_sensor
from grace_pipelines.sensors.inbox import build_inbox_sensor
from grace_pipelines.sensors.intents import build_intent_sensor
from grace_pipelines.sensors.quality import build_quality_sensor
from grace_pipelines.sensors.recovery import build_recovery_sensor
from grace_pipelines.sensors.reembed import build_reembed_sensor
from grace_pipelines.sensors.sla import build_sla_sensor

__all__ = [
    "build_consent_sensor",
    "build_inbox_sensor",
    "build_intent_sensor",
    "build_quality_sensor",
    "build_recovery_sensor",
    "build_reembed_sensor",
    "build_sla_sensor",
]

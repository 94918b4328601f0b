"""Sensors: inbox (file drops) and consent (grants that release held work)."""

from grace_pipelines.sensors.consent import build_consent_sensor
from grace_pipelines.sensors.inbox import build_inbox_sensor

__all__ = ["build_consent_sensor", "build_inbox_sensor"]
